"""HTTP clients for the outside providers the crons talk to: EmailBison (leads and their custom
variables), an availability source (free slots) and a booking provider (a lead's appointments).

Each client is a small module over one shared base (``base.ProviderClient``): explicit timeouts,
retries on 429 and 5xx with exponential backoff that honours ``Retry-After`` and never waits past
the caller's deadline, and one exception type per failure (``exceptions``). Base URLs and keys
come from the ``Client`` row (``for_client``); a row without them raises ``ProviderNotConfigured``.
"""
