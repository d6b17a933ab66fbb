package backstore

// OpenCache lets the external tests look into a cache directory.
var OpenCache = openDiskCache
