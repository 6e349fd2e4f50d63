"""gunicorn's settings for HypoTweet, read from this folder by `gunicorn` (the Procfile's web process).

Threaded workers, so a long answer (the backup download of a large database) streams past gunicorn's
30-second worker timeout, which a threaded worker's main loop keeps answering while a thread works, and
a file being sent holds one thread rather than a whole worker. Each worker takes only as many connections
as it has threads, none kept open between requests: one that is killed (out of memory, say) fails only
the requests it was serving, and the others wait for a worker that is alive.
"""

worker_class = "gthread"
threads = 4
worker_connections = 4
keepalive = 0
