from wsgiref.simple_server import WSGIRequestHandler, make_server

from django.core.management.base import BaseCommand, CommandError
from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.multiprocess import MultiProcessCollector

from cron.metrics_collector import metrics_token_accepted
from ledger import metrics


class _Quiet(WSGIRequestHandler):
    def log_message(self, format, *args):  # one line per scrape is noise
        pass


def token_checked(app):
    def checked(environ, start_response):
        if not metrics_token_accepted(environ.get("HTTP_AUTHORIZATION", "")):
            start_response("401 Unauthorized", [("Content-Type", "text/plain"),
                                                ("WWW-Authenticate", 'Bearer realm="metrics"')])
            return [b"unauthorized\n"]
        return app(environ, start_response)

    return checked


class Command(BaseCommand):
    help = ("Serve the event metrics that this host's processes write to "
            "PROMETHEUS_MULTIPROC_DIR, for a cluster pod with no web server reading that "
            "directory (a sidecar sharing it). No state gauges: the web server's /metrics has "
            "them. METRICS_TOKEN applies as on /metrics.")
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--bind", default="0.0.0.0")
        parser.add_argument("--port", type=int, default=9100)

    def handle(self, *args, bind: str, port: int, **options):
        if not metrics.multiprocess_dir():
            raise CommandError("PROMETHEUS_MULTIPROC_DIR is not set: there is nothing to serve.")
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        server = make_server(bind, port, token_checked(make_wsgi_app(registry)),
                             handler_class=_Quiet)
        self.stdout.write(f"serving {metrics.multiprocess_dir()} on http://{bind}:{port}/metrics")
        self.stdout.flush()
        server.serve_forever()
