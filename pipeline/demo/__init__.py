"""The bundled offline demo web: made-up news outlets served on 127.0.0.1 for `newsingest demo` and tests.

from pipeline.demo import DemoWeb, DemoServer

web = DemoWeb(seed=7)
with DemoServer(web) as server:
    config_text = web.config_yaml(server.base_url)
    ...
    truth = web.page("/daily-courier/news/local/....html")  # ground truth for one article URL
"""

from pipeline.demo.live import LiveDemoWeb, LiveFeed, Publication
from pipeline.demo.server import DemoServer, RecordedRequest, serve_forever
from pipeline.demo.web import DemoFeed, DemoOutlet, DemoPage, DemoStory, DemoWeb, Resource, default_now

__all__ = [
    "DemoFeed",
    "DemoOutlet",
    "DemoPage",
    "DemoServer",
    "DemoStory",
    "DemoWeb",
    "LiveDemoWeb",
    "LiveFeed",
    "Publication",
    "RecordedRequest",
    "Resource",
    "default_now",
    "serve_forever",
]
