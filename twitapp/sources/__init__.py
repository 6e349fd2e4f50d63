"""Where posts come from: each source (the X API, X data exports and other files, the demo accounts) only
fetches and normalises into the plain records of ``records``; ingest stores them. ``handles`` holds the
rules for usernames from every source."""
