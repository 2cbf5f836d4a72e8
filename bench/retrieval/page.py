"""``bench serve``'s search page (Flask): upload a face image or pick one of the run's queries,
see the k nearest gallery faces as thumbnails with their distance, identity, whether each is
the query's person (known for a picked query), and how long encoding and searching took.

Uploads above the size limit get a 413 page and files that are not images a 400 page, each
with one sentence; no traceback reaches the browser.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from html import escape

import numpy as np
from flask import Flask, Response, request

from bench.api.errors import BenchError
from bench.data.imagefile import decode_image
from bench.retrieval.gallery import RunImages
from bench.retrieval.runs import RunHandle
from bench.retrieval.search import QueryResult, run_search
from bench.retrieval.store import StoredIndex

STYLE = """body{font-family:sans-serif;margin:1.5em;max-width:70em}
.hits{display:flex;flex-wrap:wrap;gap:.8em}.hit{text-align:center;font-size:.85em;width:8em}
.hit img,.query img{width:96px;height:96px;image-rendering:pixelated;border:3px solid #ccc}
.same img{border-color:#2a2}.other img{border-color:#c22}.error{color:#b00;font-weight:bold}
form{margin:.6em 0}"""


@dataclass(frozen=True)
class Query:
    """One search's query: its code, name, label (``None``: unknown), thumbnail and encoding time."""

    codes: np.ndarray
    name: str
    label: int | None
    image: str  # an <img> of a picked query; empty for an upload
    encode_ms: float | None  # None: the run's stored code, nothing encoded


@dataclass
class SearchPage:
    """What the page searches: a run (its encoder and identities), its index and its images."""

    handle: RunHandle
    index: StoredIndex
    images: RunImages
    k: int = 10

    def query_options(self) -> str:
        codes = self.handle.codes
        return "".join(f'<option value="{q}">query {int(i)} ({escape(self.handle.identity(int(label)))})</option>'
                       for q, (i, label) in enumerate(zip(codes.query_ids, codes.query_labels, strict=True)))

    def form(self) -> str:
        return (f'<form method="post" action="/search" enctype="multipart/form-data" id="upload-form">'
                f'<label>Face image <input type="file" name="image" id="image" accept="image/*"></label> '
                f'<input type="hidden" name="k" value="{self.k}"><button type="submit" id="upload">Search</button></form>'
                f'<form method="post" action="/search" id="query-form"><label>or a query of the run '
                f'<select name="query" id="query">{self.query_options()}</select></label> '
                f'<input type="hidden" name="k" value="{self.k}"><button type="submit" id="pick">Search</button></form>')

    def page(self, body: str, status: int = 200) -> Response:
        title = f"Search {escape(self.handle.name)}"
        card = self.index.card
        head = (f"<h1>{title}</h1><p>{card['kind']} index of {card['gallery_size']} faces, "
                f"{card['bits']}-bit codes; top {self.k}</p>")
        html = f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title><style>{STYLE}</style></head>" \
               f"<body>{head}{self.form()}{body}</body></html>"
        return Response(html, status=status, mimetype="text/html")

    def results(self, result: QueryResult, query_img: str, encode_ms: float | None, search_ms: float) -> str:
        encoding = "the run's stored query code (no encoding)" if encode_ms is None else f"encoding {encode_ms:.1f} ms"
        cells = []
        for m in result.matches:
            mark = "" if m.same is None else (" same" if m.same else " other")
            same = "" if m.same is None else ("<br>same person" if m.same else "<br>other person")
            cells.append(f'<div class="hit{mark}" data-id="{m.image_id}" data-distance="{m.distance}" '
                         f'data-identity="{escape(m.identity)}"><img src="/image/{m.image_id}.png" alt="{m.image_id}">'
                         f"<br>#{m.rank} d={m.distance}<br>{escape(m.identity)}{same}</div>")
        who = f" ({escape(result.identity)})" if result.identity else ""
        return (f'<div class="query"><h2>Query: {escape(result.query)}{who}</h2>{query_img}</div>'
                f'<p id="timing">{encoding}, searching {search_ms:.2f} ms</p>'
                f'<div class="hits" id="hits">{"".join(cells)}</div>')

    def search(self) -> Response:
        """One search from the submitted form: an uploaded image, or a picked query."""
        k = request.form.get("k", type=int) or self.k
        upload = request.files.get("image")
        picked = request.form.get("query", type=int)
        try:
            if upload is not None and upload.filename:
                query = self.uploaded(upload.read(), upload.filename)
            elif picked is not None:
                query = self.picked(picked)
            else:
                raise BenchError("choose a face image to upload or a query to search with")
            [result], seconds = run_search(self.handle, self.index, query.codes, [query.name], [query.label],
                                           k=k, radius=None)
        except BenchError as exc:
            return self.page(f'<p class="error" id="error">{escape(str(exc))}</p>', status=400)
        return self.page(self.results(result, query.image, query.encode_ms, seconds * 1000))

    def uploaded(self, raw: bytes, name: str) -> Query:
        """An uploaded image, encoded by the run's model (its identity unknown)."""
        start = time.perf_counter()
        codes = self.handle.encode(decode_image(raw, self.handle.pipeline, name)[None])
        return Query(codes, name, None, "", (time.perf_counter() - start) * 1000)

    def picked(self, q: int) -> Query:
        """Query ``q`` of the run, with its stored code and identity."""
        stored = self.handle.codes
        if not 0 <= q < len(stored.query):
            raise BenchError(f"no query {q}; pick one from the list")
        image_id = int(stored.query_ids[q])
        return Query(stored.query[q:q + 1], f"query {image_id}", int(stored.query_labels[q]),
                     f'<img src="/image/{image_id}.png" alt="query">', None)


def create_app(page: SearchPage, max_upload_bytes: int) -> Flask:
    """The Flask application of ``page``; uploads above ``max_upload_bytes`` are refused."""
    app = Flask("facehash-search")
    app.config["MAX_CONTENT_LENGTH"] = max_upload_bytes

    @app.get("/")
    def home() -> Response:
        return page.page("")

    @app.post("/search")
    def search() -> Response:
        return page.search()

    @app.get("/image/<int:image_id>.png")
    def image(image_id: int) -> Response:
        try:
            return Response(page.images.thumbnail(image_id), mimetype="image/png")
        except BenchError as exc:
            return Response(str(exc), status=404, mimetype="text/plain")

    @app.errorhandler(413)
    def too_large(_: Exception) -> Response:
        limit = f"{max_upload_bytes / 2**20:.1f} MiB"
        return page.page(f'<p class="error" id="error">the upload is larger than the {limit} limit; '
                         "send a smaller image (or start bench serve with a larger --max-upload-mb)</p>", status=413)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        code = getattr(exc, "code", 500)
        return page.page(f'<p class="error" id="error">{escape(type(exc).__name__)}: {escape(str(exc))}</p>',
                         status=code if isinstance(code, int) else 500)

    return app
