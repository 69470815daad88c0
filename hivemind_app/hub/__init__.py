"""The Redis hub. Only connection checks so far; sync arrives with the hub issue."""
