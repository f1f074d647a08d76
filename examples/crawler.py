"""A web crawler: a parent machine hands URLs to child worker machines that fetch them (async).

What it exercises (and what the sample recording recordings/crawler/ shows in amdbg): child
machines, async final handlers, an Auto state (a worker not fetching is Idle), Multi states
(UrlFound, PageDone, ...), canceled transitions (robots.txt and seen URLs are vetoed; a worker
that is not Ready cannot fetch), an error state (ErrFetch on a 404), log lines, mutations
across machines (recorded as each transition's source), and a second process: the sitemap
reader runs as a child process and, recorded through the inherited AMNODE_RECORD, writes its
own file beside the crawler's.

    AMNODE_RECORD=crawl-rec python examples/crawler.py   # record every machine, both processes
    amdbg ls crawl-rec
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
from collections import deque

import amnode as am

#: the "web": page -> links on it; a missing page is a 404
SITE: dict[str, list[str]] = {
    "/": ["/docs", "/blog", "/admin"],
    "/docs": ["/docs/install", "/docs/api", "/"],
    "/docs/install": [],
    "/docs/api": ["/docs/api/v1"],
    "/blog": ["/blog/2024", "/docs"],
    "/blog/2024": [],
}
DISALLOWED = ("/admin",)  # robots.txt
WORKERS = 3

CRAWLER_SCHEMA = {
    "Start": am.State(),
    "Crawling": am.State(require=["Start"], remove=["Done"]),
    "UrlFound": am.State(multi=True, require=["Crawling"]),
    "PageDone": am.State(multi=True),
    "PageFailed": am.State(multi=True),
    "Done": am.State(remove=["Crawling"]),
}

WORKER_SCHEMA = {
    "Ready": am.State(),
    "Idle": am.State(auto=True, require=["Ready"], remove=["Fetching"]),
    "Fetching": am.State(require=["Ready"], remove=["Idle"]),
    "ErrFetch": am.State(require=["Exception"]),
}

SITEMAP_SCHEMA = {
    "Start": am.State(),
    "Reading": am.State(require=["Start"]),
    "UrlListed": am.State(multi=True, require=["Reading"]),
    "Done": am.State(remove=["Reading"]),
}


class CrawlerHandlers:
    """The crawler keeps the frontier and dispatches URLs to idle workers."""

    def __init__(self) -> None:
        self.workers: list[am.Machine] = []
        self.seen: set[str] = set()
        self.frontier: deque[str] = deque()
        self.in_flight = 0
        self.done = asyncio.Event()

    def UrlFoundEnter(self, e: am.Event) -> bool:
        url = e.args["url"]
        if url.startswith(DISALLOWED):
            e.machine.log("robots.txt disallows %s", url)
            return False  # veto: the transition is canceled
        return url not in self.seen  # veto URLs seen before

    def UrlFoundState(self, e: am.Event) -> None:
        url = e.args["url"]
        self.seen.add(url)
        self.frontier.append(url)
        self.dispatch(e.machine)

    def PageDoneState(self, e: am.Event) -> None:
        self.finished(e.machine)

    def PageFailedState(self, e: am.Event) -> None:
        e.machine.log("failed: %s", e.args["url"])
        self.finished(e.machine)

    def finished(self, m: am.Machine) -> None:
        """One page is done: hand out the next URL; with nothing left, the crawl is Done."""
        self.in_flight -= 1
        self.dispatch(m)
        if not self.frontier and not self.in_flight:
            m.add("Done")

    def DoneState(self, e: am.Event) -> None:
        self.done.set()

    def dispatch(self, m: am.Machine) -> None:
        """Give queued URLs to idle workers (one that is not Ready cancels the mutation)."""
        while self.frontier:
            url = self.frontier[0]
            for w in self.workers:
                if w.is_active("Fetching"):
                    continue
                if w.add("Fetching", {"url": url}) == am.EXECUTED:
                    self.frontier.popleft()
                    self.in_flight += 1
                    break
            else:
                return  # every worker is busy or not ready; PageDone dispatches again


class WorkerHandlers:
    """A worker fetches one URL at a time and reports to the crawler."""

    def __init__(self, crawler: am.Machine) -> None:
        self.crawler = crawler

    async def FetchingState(self, e: am.Event) -> None:
        url = e.args["url"]
        await asyncio.sleep(0)  # the network
        links = SITE.get(url)
        w = e.machine
        if links is None:
            w.add_err_state("ErrFetch", LookupError(f"404 Not Found: {url}"), {"url": url})
            w.remove(["ErrFetch", "Exception"])
            w.remove("Fetching")
            self.crawler.add("PageFailed", {"url": url, "reason": "404"})
            return
        w.log("fetched %s: %d links", url, len(links))
        for link in links:
            self.crawler.add("UrlFound", {"url": link})
        w.remove("Fetching")
        self.crawler.add("PageDone", {"url": url, "links": len(links)})


def read_sitemap(log_level: int) -> list[str]:
    """The sitemap process: lists seed URLs (a separate process, recorded into its own file)."""
    m = am.Machine(SITEMAP_SCHEMA, id="sitemap", parent="crawler", tags=["process:sitemap"],
                   log_level=log_level, logger=lambda level, line: None)
    m.add(["Start", "Reading"])
    urls = ["/", "/blog", "/missing-page"]
    for url in urls:
        m.add("UrlListed", {"url": url})
    m.add("Done")
    m.dispose()
    return urls


def sitemap_urls(log_level: int, seed: int | None) -> list[str]:
    """Run the sitemap reader as a child process (it inherits AMNODE_RECORD) and read its output."""
    cmd = [sys.executable, os.path.abspath(__file__), "--sitemap", "--log-level", str(log_level)]
    if seed is not None:
        cmd += ["--seed", str(seed + 1)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return out.split()


async def crawl(seeds: list[str], log_level: int) -> CrawlerHandlers:
    """Crawl from `seeds` with WORKERS workers; returns the crawler's handlers (for results)."""
    quiet = lambda level, line: None  # noqa: E731  (the log is recorded, not printed)
    handlers = CrawlerHandlers()
    crawler = am.Machine(CRAWLER_SCHEMA, id="crawler", tags=["crawler"], handlers=handlers,
                         log_level=log_level, args_mapper=am.new_args_mapper(names=None),
                         logger=quiet)
    for i in range(1, WORKERS + 1):
        w = am.Machine(WORKER_SCHEMA, id=f"crawler-worker-{i}", parent=crawler,
                       tags=["worker"], handlers=WorkerHandlers(crawler), log_level=log_level,
                       args_mapper=am.new_args_mapper(names=None), logger=quiet)
        handlers.workers.append(w)
    # the last worker is still starting: the first dispatch to it is canceled (Require Ready)
    for w in handlers.workers[:-1]:
        w.add("Ready")
    crawler.add(["Start", "Crawling"])
    handlers.workers[-1].add("Fetching", {"url": "/too-early"})
    for url in seeds:
        crawler.add("UrlFound", {"url": url})
    handlers.workers[-1].add("Ready")
    handlers.dispatch(crawler)
    await asyncio.wait_for(handlers.done.wait(), timeout=10)
    for w in handlers.workers:
        w.dispose()
    crawler.dispose()
    return handlers


def main(argv: list[str] | None = None) -> int:
    """Crawl the demo site and print what was visited."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--record", metavar="DIR",
                        help="record every machine (and the sitemap process's) into DIR")
    parser.add_argument("--log-level", type=int, default=int(am.LogLevel.OPS),
                        help="machine log level 0-5 (default 3; log lines are recorded)")
    parser.add_argument("--seed", type=int, help="make machine and transition ids reproducible")
    parser.add_argument("--sitemap", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.seed is not None:
        am.seed_ids(args.seed)
    if args.record:
        from amnode import telemetry
        os.environ["AMNODE_RECORD"] = args.record  # the sitemap process inherits it
        telemetry.install(args.record)
    if args.sitemap:
        print("\n".join(read_sitemap(args.log_level)))
        return 0
    seeds = sitemap_urls(args.log_level, args.seed)
    handlers = asyncio.run(crawl(seeds, args.log_level))
    print(f"visited {len(handlers.seen)} URLs: {' '.join(sorted(handlers.seen))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
