export {
  createSlowLog,
  setSlowThreshold,
  slowThreshold,
  redactQuery,
  DEFAULTS,
  SENSITIVE_HEADERS,
  CENSOR,
  type SlowLog,
  type SlowLogOptions,
  type SlowLogLine,
  type SlowLogLevel,
  type QueryMode,
} from './slowlog.js'
