import type { RegisterCommand } from '../context.js'
import { json } from '../output.js'
import { defaultKeyDir, generateKeyFiles } from '../seal-keys.js'

export const registerKeys: RegisterCommand = (program, ctx) => {
  const keys = program
    .command('keys')
    .description('key pairs for sealed values (kv put --seal-to, kv get --unseal)')

  keys
    .command('gen')
    .description(
      'make an X25519 key pair: NAME.key (private, 0600, never overwritten) and NAME.pub; prints the public key',
    )
    .argument('<name>')
    .option('--dir <dir>', 'where the files go ($PLEXUS_KEY_DIR, else ~/.config/plexus/keys)')
    .action(async (name: string, o: { dir?: string }) => {
      const r = await generateKeyFiles(o.dir ?? defaultKeyDir(), name)
      if (ctx.format() === 'json')
        return ctx.print(
          json({
            private: r.secretFile,
            public: r.publicFile,
            publicKey: r.publicText.trim(),
            fingerprint: r.fingerprint,
          }),
        )
      process.stderr.write(
        `made ${r.secretFile} (private: keep it to yourself) and ${r.publicFile} (${r.fingerprint})\n`,
      )
      ctx.print(r.publicText)
    })
}
