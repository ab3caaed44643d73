"""Scrapy settings of the census crawl: only what differs from Scrapy's defaults, with why.

Run options are ``CENSUS_*`` settings, so ``scrapy crawl census -s CENSUS_DB=output/census.db
-s CENSUS_RUN_ID=3`` works as well as ``census crawl``.
"""

from crawler import __version__

BOT_NAME = "census"
SPIDER_MODULES = ["crawler.crawl.spider"]
NEWSPIDER_MODULE = "crawler.crawl.spider"

# An identifying user agent: operators of a national network should know who is measuring.
USER_AGENT = f"ccTLD-Census/{__version__} (+https://github.com/cctld-census/cctld-census)"

ROBOTSTXT_OBEY = True

# Polite for a national network on a thin link: one connection per server, a delay between
# requests, AutoThrottle backing off when the server slows down.
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 1
DOWNLOAD_DELAY = 1.0
RANDOMIZE_DOWNLOAD_DELAY = True
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_MAX_DELAY = 30.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0

# Slow servers get time, dead ones a bounded cost: 20 s a try, one retry.
DOWNLOAD_TIMEOUT = 20
RETRY_TIMES = 1
RETRY_HTTP_CODES = [503, 504, 522, 524, 408, 429]

# Hostile input: bounded bodies (a gzip bomb is cut at the decompressed size too).
DOWNLOAD_MAXSIZE = 10 * 1024 * 1024
DOWNLOAD_WARNSIZE = 2 * 1024 * 1024
REDIRECT_MAX_TIMES = 10
DEPTH_LIMIT = 6
DEPTH_PRIORITY = 1
SCHEDULER_DISK_QUEUE = "scrapy.squeues.PickleFifoDiskQueue"
SCHEDULER_MEMORY_QUEUE = "scrapy.squeues.FifoMemoryQueue"

# Measured 1.6x faster than the default of 100 on this machine kind (CPU-bound pipeline).
CONCURRENT_ITEMS = 10

# Every address comes from this run's DNS census, never from the system resolver.
TWISTED_DNS_RESOLVER = "crawler.crawl.resolver.CensusResolver"

# The census spider handles error statuses itself (a 502 home page is a fact of the census).
HTTPERROR_ALLOW_ALL = True
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False
LOG_LEVEL = "INFO"
# No proxy from the environment: a proxy would resolve names itself, past the census'
# addresses and the net policy.
HTTPPROXY_ENABLED = False
# Scrapy 2.19's HTTP endpoint that runs Python code sent to it (aiohttp, imported and served
# in the crawl process): a census of hostile servers runs no such thing.
REMOTE_CONTROL_ENABLED = False
DOWNLOADER_STATS = False

# Scrapy's HTTP handler, plus the port map the lab needs (a no-op without CENSUS_*_PORT).
DOWNLOAD_HANDLERS = {
    "http": "crawler.crawl.handlers.PortMapDownloadHandler",
    "https": "crawler.crawl.handlers.PortMapDownloadHandler",
}
# Scrapy's components are per request and per page on the reactor, which the stage shares
# two cores with: those whose work the census never uses or does itself are off (each one a
# method call or two, a signal, stats, for every request).
DOWNLOADER_MIDDLEWARES = {
    # the spider has no allowed_domains (it keeps to each site itself, ``same_site``): this
    # matched every host, twice a request (at scheduling and at download)
    "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware": None,
    # no credentials, no proxy (above)
    "scrapy.downloadermiddlewares.httpauth.HttpAuthMiddleware": None,
    "scrapy.downloadermiddlewares.httpproxy.HttpProxyMiddleware": None,
    # byte and status counts of the log's stats dump: the WARC and the rows record each one
    "scrapy.downloadermiddlewares.stats.DownloaderStats": None,
    # a resumed crawl answers from the run's WARC what the kill kept from being recorded
    "crawler.crawl.resume.WarcReplay": 50,
    "crawler.crawl.middlewares.NetPolicyMiddleware": 60,
    # robots.txt per scheme, host and port (RFC 9309), not per host and port
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
    "crawler.crawl.middlewares.RobotsPerOrigin": 100,
    # Scrapy's own raise on a target that is no URL, and the page is lost: same places
    "scrapy.downloadermiddlewares.redirect.RedirectMiddleware": None,
    "crawler.crawl.middlewares.SafeRedirectMiddleware": 600,
    "scrapy.downloadermiddlewares.redirect.MetaRefreshMiddleware": None,
    "crawler.crawl.middlewares.SafeMetaRefreshMiddleware": 580,
}
SPIDER_MIDDLEWARES = {
    "crawler.crawl.middlewares.TrapMiddleware": 550,
    # HTTPERROR_ALLOW_ALL: it let every response through
    "scrapy.spidermiddlewares.httperror.HttpErrorMiddleware": None,
    # a warning for spiders that copy Scrapy's own meta keys on; this one builds its own
    "scrapy.spidermiddlewares.metacopy.MetaCopyDetectionMiddleware": None,
}
ITEM_PIPELINES = {
    "crawler.crawl.pipelines.CensusPipeline": 300,
}
EXTENSIONS = {
    # disabled above: not even imported (aiohttp alone is ~0.1 s of the crawl's start)
    "scrapy.extensions.remote_control.RemoteControl": None,
    "scrapy.extensions.telnet.TelnetConsole": None,
    "crawler.crawl.extensions.WarcCapture": 100,
    "crawler.crawl.extensions.Progress": 200,
}

# Census options (set per run by crawler.crawl.crawl_settings).
CENSUS_DB = "output/census.db"
CENSUS_RUN_ID = None
CENSUS_OUT = "output"
CENSUS_MAX_PAGES = 200
CENSUS_ALLOW_NET: list[str] = []
CENSUS_HTTP_PORT = None
CENSUS_HTTPS_PORT = None
CENSUS_WARC_MAX_SIZE = 1024 * 1024 * 1024
# Continue the run's interrupted crawl: what it recorded (pages, failures, start URLs) is
# kept and not fetched again; the links its pages followed that left no row are the frontier,
# and what its WARC holds of them is read from there (crawler/crawl/resume.py).
CENSUS_RESUME = False
CENSUS_SCRIPTS = True
CENSUS_REQUISITES = True
CENSUS_MAX_REQUISITES = 300
# Processes that analyse pages (extraction, the script sandbox, the requisite scan) while the
# reactor fetches: None is one per core beyond the first (at most 4) for a crawl that may
# fetch 1,500 pages or more (sites x max pages), else none; 0 is the reactor's own process.
CENSUS_EXTRACT_WORKERS = None
