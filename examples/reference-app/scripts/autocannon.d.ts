// The part of autocannon's API scripts/load.ts uses (autocannon ships no types; @types/autocannon
// is not a dependency of this example).
declare module 'autocannon' {
  interface RequestParams {
    method?: string
    path?: string
    headers?: Record<string, string>
    body?: string
    setupRequest?: (req: RequestParams, context: Record<string, unknown>) => RequestParams
  }
  interface Options {
    url: string
    connections?: number
    duration?: number
    requests?: RequestParams[]
  }
  interface Histogram {
    average: number
    p50: number
    p90: number
    p99: number
    max: number
  }
  interface Result {
    latency: Histogram
    requests: Histogram & { total: number }
    statusCodeStats: Record<string, { count: number }>
    errors: number
    timeouts: number
    duration: number
  }
  function autocannon(options: Options): Promise<Result>
  export default autocannon
}
