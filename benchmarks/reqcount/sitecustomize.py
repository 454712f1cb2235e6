"""Request counter for the benchmarks: on PYTHONPATH, every Python process (ansible-playbook and the
modules it starts) appends one line per HTTP request urllib3 sends to $VELOCITY_BENCH_REQLOG.

Both sides of a comparison (our modules and the anchors) talk to the API server through urllib3
(the anchors through the kubernetes client, which uses it), so this counts their round trips alike, and nothing else on the
machine (the CI run sharing the API server) gets into the count."""

import os

_LOG = os.environ.get("VELOCITY_BENCH_REQLOG")
if _LOG:
    try:
        from urllib3 import connectionpool as _cp

        _orig = _cp.HTTPConnectionPool._make_request

        def _make_request(self, conn, method, url, *args, **kwargs):
            with open(_LOG, "a") as handle:
                handle.write("%s %s:%s %s\n" % (method, self.host, self.port, url.split("?")[0]))
            return _orig(self, conn, method, url, *args, **kwargs)

        _cp.HTTPConnectionPool._make_request = _make_request
    except Exception:  # urllib3 missing or changed: count nothing rather than break the run
        pass
