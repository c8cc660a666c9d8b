/** Published once per finished request by the pipeline. */
export interface HttpEvents {
  'http.request': {
    readonly method: string
    /** Route template, or undefined when no route matched. */
    readonly route: string | undefined
    readonly status: number
    readonly durationMs: number
    readonly aborted: boolean
    readonly requestBytes?: number
    readonly responseBytes?: number
    readonly requestId: string
  }
  'http.active': { readonly delta: 1 | -1 }
}
