import { mkdir } from 'node:fs/promises'
import { buildApp } from '../api/app.js'
import { buildAppApi } from '../api/app-api.js'
import { AppListener } from '../api/app-listener.js'
import { apiMetrics } from '../api/metrics.js'
import { listenMetrics } from '../api/metrics-listener.js'
import { listenUnix } from '../api/server.js'
import { listenTcp } from '../api/tcp-listener.js'
import { createSigner, loadOrCreatePeerKey, verifyRecordSignature } from '../cluster/identity.js'
import { ClusterService } from '../cluster/service.js'
import { DatapathService } from '../datapath/service.js'
import { DiagService } from '../diag/service.js'
import { DnsService } from '../dns/service.js'
import { EndpointService } from '../endpoints/service.js'
import { spoolDirOf } from '../endpoints/spool.js'
import { createIpam } from '../ipam/index.js'
import type { Logger } from '../lib/log.js'
import { MemoryReleaser } from '../lib/memory-release.js'
import { Metrics } from '../lib/metrics.js'
import type { Startable } from '../lib/startable.js'
import { VERSION } from '../lib/version.js'
import { LinkService } from '../ports/link-service.js'
import { publishedPortRules } from '../ports/publish.js'
import { PortService } from '../ports/publish-service.js'
import { RunnerService } from '../runner/service.js'
import { SchedulerService } from '../scheduler/service.js'
import { HealthChecker } from '../services/health.js'
import { StoreService } from '../store/service.js'
import { conntrackAccounting, TrafficService } from '../traffic/service.js'
import type { AgentComponents } from './components.js'
import type { AgentConfig } from './config.js'

/**
 * Composition root: builds the components, starts services in order, and
 * stops them in reverse when the root AbortController fires.
 */
export class Agent {
  readonly components: AgentComponents
  private readonly controller = new AbortController()
  private readonly started: Startable[] = []
  private closeApi?: () => Promise<void>
  private closeMetrics?: () => Promise<void>
  private closeTcpApi?: () => Promise<void>

  constructor(config: AgentConfig, logger: Logger) {
    const metrics = new Metrics()
    metrics.collectProcessMetrics()
    this.components = {
      config,
      logger,
      metrics,
      shutdown: this.controller.signal,
      startedAt: new Date(),
      version: VERSION,
      // peerId and store need the state dir, so start() fills them in before anything uses them
    } as AgentComponents
  }

  async start(): Promise<void> {
    const { config, logger } = this.components
    await mkdir(config.stateDir, { recursive: true, mode: 0o700 })
    await mkdir(config.runDir, { recursive: true, mode: 0o755 })
    try {
      const releaser = new MemoryReleaser(this.components.metrics, logger)
      await releaser.start()
      this.started.push(releaser)
      const signer = createSigner(await loadOrCreatePeerKey(config.stateDir))
      // bytes between services (src/traffic): the sampler, and the accounting switch the datapath keeps on for it
      const measureTraffic = config.traffic?.enabled !== false
      const storeService = await StoreService.open({
        stateDir: config.stateDir,
        logger: logger.child({ component: 'store' }),
        signer,
        verify: verifyRecordSignature,
        metrics: this.components.metrics,
        // the partition bound: how long tombstones and dead hosts' records (their heartbeats, which
        // ipam's majority rule counts) are kept
        reapAfterMs: config.cluster.reapAfterMs,
      })
      Object.assign(this.components, { peerId: signer.self, store: storeService.store })
      await storeService.start()
      this.started.push(storeService)
      const cluster = await ClusterService.create({ ...this.components, store: storeService.store })
      Object.assign(this.components, { members: cluster })
      await cluster.start()
      this.started.push(cluster)
      const ipam = await createIpam(this.components)
      Object.assign(this.components, {
        lease: ipam.lease,
        addresses: ipam.addresses,
        networks: ipam.networks,
      })
      await ipam.service.start()
      this.started.push(ipam.service)
      // before endpoints: the CNI path attaches containers to the bridge the datapath makes
      const datapath = await DatapathService.create({
        ...this.components,
        lease: ipam.lease,
        providers: [publishedPortRules, ...(measureTraffic ? [conntrackAccounting(signer.self)] : [])],
      })
      await datapath.start()
      this.started.push(datapath)
      Object.assign(this.components, { datapath })
      // before endpoints: CNI ADD admits published ports through it
      const ports = new PortService({ ...this.components, lease: ipam.lease, datapath })
      await ports.start()
      this.started.push(ports)
      Object.assign(this.components, { ports })
      const endpoints = new EndpointService({
        ...this.components,
        lease: ipam.lease,
        // its kernel side (veths, the container's interface) is the datapath's
        datapath,
        addresses: ipam.addresses,
        networks: ipam.networks,
        spoolDirs: [config.api.socket, ...config.api.extraSockets].map(spoolDirOf),
        // started below, before the API takes an ADD
        ...(config.dns.enabled
          ? {
              dns: {
                listeningOn: (a: string) => this.components.dns?.listeningOn(a) ?? Promise.resolve(false),
              },
            }
          : {}),
      })
      await endpoints.start()
      this.started.push(endpoints)
      Object.assign(this.components, { endpoints })
      const health = new HealthChecker({ ...this.components, logger: logger.child({ component: 'health' }) })
      await health.start()
      this.started.push(health)
      if (config.dns.enabled) {
        const dns = new DnsService({ ...this.components, logger: logger.child({ component: 'dns' }) })
        await dns.start()
        this.started.push(dns)
        Object.assign(this.components, { dns })
      }
      const links = new LinkService({ ...this.components, logger: logger.child({ component: 'links' }) })
      await links.start()
      this.started.push(links)
      Object.assign(this.components, { links })
      const scheduler = new SchedulerService({
        ...this.components,
        members: cluster,
        logger: logger.child({ component: 'scheduler' }),
      })
      await scheduler.start()
      this.started.push(scheduler)
      Object.assign(this.components, { scheduler })
      if (measureTraffic) {
        const traffic = new TrafficService({
          ...this.components,
          logger: logger.child({ component: 'traffic' }),
        })
        await traffic.start()
        this.started.push(traffic)
      }
      // read-only: answers other members' inspect questions and the API's doctor/trace
      const diag = new DiagService({
        ...this.components,
        lease: ipam.lease,
        inspector: cluster,
        handshakes: cluster,
        datapath,
      })
      diag.start()
      Object.assign(this.components, { diag })
      // after the API socket exists: the runner attaches tasks through the CNI plugin, which calls the API
      const runner =
        config.runner?.enabled === false
          ? undefined
          : new RunnerService({ ...this.components, logger: logger.child({ component: 'runner' }) })
      if (runner) Object.assign(this.components, { runner })
      const app = await buildApp(this.components)
      const { connections } = apiMetrics(this.components.metrics)
      this.closeApi = await listenUnix(
        app,
        [config.api.socket, ...config.api.extraSockets],
        config.api,
        (outcome) => connections.inc({ listener: 'api', outcome }),
      )
      if (config.api.listen)
        this.closeTcpApi = await listenTcp(
          app,
          { ...config.api, listen: config.api.listen },
          config.api,
          this.components.metrics,
          logger,
        )
      if (config.api.appPort) {
        const appApi = new AppListener(
          this.components,
          await buildAppApi(this.components, { requestsPerSecond: config.api.appRequestsPerSecond }),
        )
        await appApi.start()
        this.started.push(appApi)
        Object.assign(this.components, { appApi })
      }
      if (config.metrics.listen)
        this.closeMetrics = await listenMetrics(
          this.components.metrics,
          config.metrics.listen,
          logger,
          config.api,
        )
      if (runner) {
        await runner.start()
        this.started.push(runner)
      }
    } catch (err) {
      await this.stop()
      throw err
    }
    logger.info({ socket: config.api.socket, version: VERSION }, 'plexusd started')
  }

  async stop(): Promise<void> {
    if (this.controller.signal.aborted) return
    this.controller.abort()
    await this.closeApi?.()
    await this.closeTcpApi?.()
    await this.closeMetrics?.()
    for (const s of this.started.reverse()) {
      try {
        await s.stop()
      } catch (err) {
        this.components.logger.warn({ err }, 'service stop failed')
      }
    }
    this.components.logger.info('plexusd stopped')
  }
}
