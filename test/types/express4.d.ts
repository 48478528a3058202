// The `express4` dev dependency is Express 4 installed under an alias; its API is the
// one @types/express describes for the parts the tests use.
declare module 'express4' {
  import express = require('express');
  export = express;
}
