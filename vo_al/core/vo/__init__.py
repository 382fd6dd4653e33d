"""The Virtual Observatory: services, queries, and spectra fetched from them.

- `services`: the named SSAP/TAP services a user works with, saved as JSON
- `network`: the HTTP session under them: timeouts, deadlines, Retry-After
- `query`: SSAP and TAP queries through pyvo (sync, async, paged), typed errors
- `harvest`: downloading what a query returned into a cache and ingesting it into the pool
- `prefetch`: whole spectra read ahead for the labelling view, local or through the cache
"""
