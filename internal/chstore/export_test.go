package chstore

// Replicated exposes replicated to the external tests.
var Replicated = replicated
