import type { Metrics } from '../lib/metrics.js'

/** The runner's metrics; conventions in src/lib/metrics.ts. */
export function runnerMetrics(m: Metrics) {
  return {
    taskStarts: m.counter({
      name: 'plexus_runner_task_starts_total',
      help: 'Task processes the runner started, by result (ok, failed: the driver could not start it)',
      labelNames: ['result'],
    }),
    taskExits: m.counter({
      name: 'plexus_runner_task_exits_total',
      help: 'Task runs that ended, by outcome (success, failure, gone: no exit status recorded)',
      labelNames: ['outcome'],
    }),
    adopted: m.counter({
      name: 'plexus_runner_tasks_adopted_total',
      help: 'Running tasks a starting agent found and kept (no second process, no second CNI ADD)',
    }),
    templateRenders: m.counter({
      name: 'plexus_runner_template_renders_total',
      help: 'Task template renders, by result (changed: a file was written, unchanged, failed: a missing key or a render error)',
      labelNames: ['result'],
    }),
    passErrors: m.counter({
      name: 'plexus_runner_pass_errors_total',
      help: 'Runner passes that failed (retried on the next change or timer)',
    }),
  }
}
