// express 4 is installed under an alias for the conformance run; its API shape is express's.
declare module 'express4' {
  import express from 'express'
  export default express
}
