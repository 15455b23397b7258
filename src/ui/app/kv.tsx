// KV browser and editor over /v1/kv. Values are JSON (what the store holds); a save is a
// compare-and-set on the index the editor read, so a change made meanwhile by someone else is
// reported instead of overwritten. Keys owned by another host are refused by the agent
// (PLX_STORE_*), and the agent's message is shown as it is.
import { useEffect, useState } from 'preact/hooks'
import { api, type KvEntry } from './api.js'

export function KvView({ keys, version }: { keys: string[]; version: number }) {
  const [filter, setFilter] = useState('')
  const [entry, setEntry] = useState<KvEntry | undefined>()
  const [key, setKey] = useState('')
  const [text, setText] = useState('')
  const [message, setMessage] = useState('')

  const open = async (k: string) => {
    setKey(k)
    try {
      const e = await api.kvGet(k)
      setEntry(e)
      setText(JSON.stringify(e.value, null, 2))
      setMessage('')
    } catch (err) {
      setEntry(undefined)
      setText('')
      setMessage((err as Error).message)
    }
  }

  // the open key changed elsewhere: show the new value unless the operator is editing it
  useEffect(() => {
    if (!entry) return
    api.kvGet(entry.key).then(
      (e) => {
        if (e.modifyIndex !== entry.modifyIndex && text === JSON.stringify(entry.value, null, 2)) {
          setEntry(e)
          setText(JSON.stringify(e.value, null, 2))
        }
      },
      () => undefined,
    )
  }, [version])

  const save = async (ev: Event) => {
    ev.preventDefault()
    let value: unknown
    try {
      value = JSON.parse(text)
    } catch (err) {
      setMessage(`not JSON: ${(err as Error).message}`)
      return
    }
    try {
      const cas = entry?.key === key ? entry.modifyIndex : 0
      const saved = await api.kvPut(key, value, cas)
      setEntry(saved)
      setMessage(`saved ${saved.key} (index ${saved.modifyIndex})`)
    } catch (err) {
      setMessage((err as Error).message)
    }
  }

  const remove = async () => {
    if (!entry) return
    try {
      await api.kvDelete(entry.key, entry.modifyIndex)
      setMessage(`deleted ${entry.key}`)
      setEntry(undefined)
      setText('')
    } catch (err) {
      setMessage((err as Error).message)
    }
  }

  const shown = keys.filter((k) => k.includes(filter))
  return (
    <div class="kv">
      <section aria-label="keys">
        <label>
          filter keys{' '}
          <input
            type="search"
            value={filter}
            onInput={(e) => setFilter((e.target as HTMLInputElement).value)}
          />
        </label>
        <ul class="keys">
          {shown.slice(0, 500).map((k) => (
            <li key={k}>
              <button type="button" class="link" aria-current={k === entry?.key} onClick={() => open(k)}>
                {k}
              </button>
            </li>
          ))}
        </ul>
        {shown.length > 500 && <p>{shown.length - 500} more: narrow the filter</p>}
      </section>
      <form class="editor" onSubmit={save} aria-label="edit a key">
        <label>
          key{' '}
          <input
            name="key"
            required
            value={key}
            onInput={(e) => setKey((e.target as HTMLInputElement).value)}
          />
        </label>
        <label>
          value (JSON)
          <textarea
            name="value"
            rows={12}
            value={text}
            onInput={(e) => setText((e.target as HTMLTextAreaElement).value)}
          />
        </label>
        {entry && (
          <p>
            owner {entry.owner}, index {entry.modifyIndex}
            {entry.expiresAt ? `, expires ${entry.expiresAt}` : ''}
          </p>
        )}
        <div>
          <button type="submit">save</button>
          <button type="button" disabled={!entry} onClick={remove}>
            delete
          </button>
        </div>
        <p role="status">{message}</p>
      </form>
    </div>
  )
}
