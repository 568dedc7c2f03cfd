"""Privacy building blocks below every layer that touches identifiers: pseudonyms
(keyed HMAC), field encryption (AES-GCM) and reading ids from raw lines."""
