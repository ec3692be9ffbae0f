"""ISAPI ContentMgmt footage search and the calendar of a track's footage.

Search: `GET|POST /ISAPI/ContentMgmt/search` (permission `playBack`), `CMSearchDescription` ->
`CMSearchResult`. A track's footage is the index rows under the track's id (its recorder
writes them so), whichever stream it records.
- `trackIDList/trackID` (or `trackList/trackID`): one or more configured tracks, or a
  channel's picture track (channel * 100 + 3, as on Hikvision devices, unless a record track
  has that id); an unknown one is a 400. Without the list, every record track. Results come
  track by track in the order asked, oldest first within a track, so paging is stable while
  nothing is recorded.
- One `timeSpanList/timeSpan{startTime, endTime}`, ISO 8601 with `Z` or an offset; a time
  without a zone is the device's local time (its configured time zone). The span is after
  2000-01-01, before 2100, ends after it starts and lasts at most 366 days.
- `maxResults` 1..1000 (100 if absent), `searchResultPostion` (Hikvision's spelling) or
  `searchResultPosition` 0..10,000,000.
- `metadataList/metadataDescriptor`: `//recordType.meta.std-cgi.com` (every type) or
  `.../<type>`, several meaning any of them; `recordType.meta.isapi.com` is the same. The
  types are `FILTER_WORDS`: Hikvision's result words (`timing`, `motion`, `alarm`,
  `manual`), its mode names (`CMR`, `MOTION`, `ALARM`, `EDR`, `ALARMANDMOTION`, `AllEvent`),
  and `event`. For picture tracks only `PICTURE_WORDS` (timing, motion, alarm and their
  aliases; pictures are filed under those or their event's type). Anything else is a 400.
- `contentTypeList/contentType` `video` or `metadata` (clients send either for recordings).
Each match is one recording file: `timeSpan` is its span in UTC with `Z`, the start rounded
down and the end up to the second (so it covers the file; Hikvision's times are UTC too);
`playbackURI` is `record.footage.playback_uri` of the file's exact span (RTSP port and the
host the client reached); `codecType` `H.264-BP` or `H.265`; `metadataDescriptor`
`recordType.meta.std-cgi.com/<word>` with `RESULT_WORDS`. `responseStatusStrg` is `MORE`
while matches follow this page, else `OK`, or `NO MATCHES` for an empty page;
`totalMatches` (Vigil's) counts every match. Without a card: `NO MATCHES`.
A picture match has `startTime` = `endTime` = when it was taken (to the second), contentType
`metadata`, codecType `jpeg`, the picture's HTTP URL (`isapi_pictures.picture_uri` on the
scheme and host the client used) as `playbackURI`, and its event type as the record type.

Calendar: `POST|GET .../record/tracks/{id}/dailyDistribution` with `trackDailyParam{year,
monthOfYear}` -> `trackDailyDistribution{dayList{day{id, dayOfMonth, record, recordType}}}`
for every day of that month in device local time; `recordType` is `time` for a day with
continuous footage, `event` for one with only other footage.

Record tracks, manual recording and track status are in `isapi_record`.
"""

from __future__ import annotations

import asyncio
import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from aiohttp import web

from vigil.api.auth import requires
from vigil.api.context import context
from vigil.api.errors import bad_parameters, bad_xml_content
from vigil.api.io import by_url_id, read_xml, search_result, xml_response
from vigil.api.isapi_pictures import PICTURE_TRACK, picture_uri
from vigil.api.isapi_record import RESULT_WORDS, guid
from vigil.api.xml import XmlIn, render
from vigil.board.clock import parse_time_zone
from vigil.config.model import Config
from vigil.record.footage import playback_uri
from vigil.record.index import PAGE_LIMIT, Picture, RecordingIndex, Segment

routes = web.RouteTableDef()

# Search. Record types as results name them: `RESULT_WORDS` (isapi_record; track status too).
RECORD_META = "recordType.meta.std-cgi.com"
RECORD_META_PREFIXES = frozenset({RECORD_META.lower(), "recordtype.meta.isapi.com"})
_EVENTS = frozenset({"motion", "alarm", "event"})
# What a search's record-type word finds, read without regard to case: the result words,
# the schedule's mode names and the words clients are seen to send. None: every type.
# ALARMANDMOTION finds `event` footage: the recorder files motion&alarm recordings under it.
FILTER_WORDS: dict[str, frozenset[str] | None] = {
    "": None,
    "all": None,
    **dict.fromkeys(("timing", "time", "cmr", "continuous"), frozenset({"continuous"})),
    **dict.fromkeys(("motion", "vmd", "videomotion", "motiondetection"), frozenset({"motion"})),
    "alarm": frozenset({"alarm"}),
    **dict.fromkeys(("edr", "alarmormotion"), frozenset({"motion", "alarm"})),
    "alarmandmotion": frozenset({"event"}),
    "manual": frozenset({"manual"}),
    "event": frozenset({"event"}),
    "allevent": _EVENTS,
}
# What a search's word finds among pictures, filed under "timing" or their event's type.
# Only these: the others name recordings (manual, the `event` type) or sets of event types
# that the picture index cannot select (AllEvent: every type but timing).
PICTURE_WORDS: dict[str, frozenset[str] | None] = {
    "": None,
    "all": None,
    **dict.fromkeys(("timing", "time", "cmr", "continuous"), frozenset({"timing"})),
    **dict.fromkeys(("motion", "vmd", "videomotion", "motiondetection"), frozenset({"motion"})),
    "alarm": frozenset({"alarm"}),
    **dict.fromkeys(("edr", "alarmormotion"), frozenset({"motion", "alarm"})),
}
SEGMENT_CODECS = {"H264": "H.264-BP", "H265": "H.265"}
DEFAULT_RESULTS = 100
MAX_RESULTS = PAGE_LIMIT
MAX_POSITION = 10_000_000
MAX_SEARCH_TRACKS = 96
MAX_DESCRIPTORS = 16
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EARLIEST_SEARCH = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_SEARCH = datetime(2100, 1, 1, tzinfo=UTC)
MAX_SEARCH_SPAN = timedelta(days=366)
DAY_US = 24 * 3600 * 1_000_000


# -- footage search ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Source:
    """What a searched track id names: a record track, or (x03) channel x's pictures."""

    track_id: int
    pictures: bool = False


@dataclass(frozen=True)
class FootageQuery:
    search_id: str
    sources: tuple[Source, ...]
    start_us: int
    end_us: int
    words: frozenset[str] | None  # the record-type words asked for (lower case); None: all
    offset: int
    limit: int

    def record_types(self) -> frozenset[str] | None:
        return _types(self.words, FILTER_WORDS)

    def picture_types(self) -> frozenset[str] | None:
        return _types(self.words, PICTURE_WORDS)


def _types(
    words: frozenset[str] | None, table: dict[str, frozenset[str] | None]
) -> frozenset[str] | None:
    found = [table[w] for w in words] if words is not None else [None]
    if any(types is None for types in found):
        return None
    return frozenset().union(*(t for t in found if t is not None))


def _texts(doc: XmlIn, list_tag: str, item_tag: str, limit: int) -> list[str] | None:
    """The texts of `<list_tag><item_tag>..</item_tag>*</list_tag>`; None without the list."""
    items = doc.child(list_tag)
    if items is None:
        return None
    texts = []
    for item in items.children(item_tag, limit=limit):
        item.finish()  # an item holds text, not elements
        texts.append((item.element.text or "").strip())
    items.finish()
    return texts


def _source(text: str, config: Config) -> Source:
    track_id = int(text) if text.isdigit() and len(text) <= 4 else 0
    if config.record.track(track_id) is not None:
        return Source(track_id)
    if track_id % 100 == PICTURE_TRACK and config.stream(track_id - 2) is not None:
        return Source(track_id, pictures=True)
    raise bad_parameters(f"<trackID> {text[:16]!r}: no such record track or picture track")


def _search_sources(doc: XmlIn, config: Config) -> tuple[Source, ...]:
    """The tracks asked for (`trackIDList`, or `trackList` as some clients say); without a
    list, every record track."""
    asked = _texts(doc, "trackIDList", "trackID", MAX_SEARCH_TRACKS)
    if asked is None:
        asked = _texts(doc, "trackList", "trackID", MAX_SEARCH_TRACKS)
    if asked is None:
        return tuple(Source(t.id) for t in config.record.tracks)
    sources: list[Source] = []
    for text in asked:
        source = _source(text, config)
        if source not in sources:
            sources.append(source)
    if not sources:
        raise bad_parameters("<trackIDList> names no track")
    return tuple(sources)


def _search_time(doc: XmlIn, tag: str, zone: tzinfo) -> datetime:
    text = doc.text(tag, max_len=64)
    if not text:
        raise bad_xml_content(f"<timeSpan> needs <{tag}>")
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise bad_parameters(f"<{tag}> {text!r} is not an ISO 8601 date and time") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=zone)


def _search_span(doc: XmlIn, config: Config) -> tuple[int, int]:
    """The one timeSpan -> UTC microseconds; a time without a zone is the device's local time."""
    spans = doc.child("timeSpanList")
    if spans is None:
        raise bad_xml_content("a search needs <timeSpanList>")
    zone = parse_time_zone(config.time.time_zone)
    found = None
    for span in spans.children("timeSpan", limit=1):
        found = _search_time(span, "startTime", zone), _search_time(span, "endTime", zone)
        span.finish()
    spans.finish()
    if found is None:
        raise bad_xml_content("<timeSpanList> needs a <timeSpan>")
    start, end = found
    if end <= start:
        raise bad_parameters("<endTime> is not after <startTime>")
    if start < EARLIEST_SEARCH or end > LATEST_SEARCH:
        raise bad_parameters("a search lies between 2000 and 2100")
    if end - start > MAX_SEARCH_SPAN:
        raise bad_parameters(f"a search spans at most {MAX_SEARCH_SPAN.days} days")
    return _us(start), _us(end)


def _us(when: datetime) -> int:
    return (when - EPOCH) // timedelta(microseconds=1)


def _descriptor_word(text: str) -> str:
    """`//recordType.meta.std-cgi.com[/<word>]` -> the word, lower case ("" for all)."""
    prefix, _, word = text.strip().strip("/").partition("/")
    if prefix.lower() not in RECORD_META_PREFIXES:
        raise bad_parameters(
            f"<metadataDescriptor> {text[:64]!r}: only //recordType.meta.std-cgi.com[/type] "
            "searches are supported"
        )
    return word.lower()


def _search_words(doc: XmlIn, sources: tuple[Source, ...]) -> frozenset[str] | None:
    descriptors = _texts(doc, "metadataList", "metadataDescriptor", MAX_DESCRIPTORS)
    if not descriptors:
        return None
    sent = {_descriptor_word(d): d for d in descriptors}
    tables = {s.pictures: PICTURE_WORDS if s.pictures else FILTER_WORDS for s in sources}
    for pictures, table in tables.items():
        unknown = sorted(set(sent) - set(table))
        if unknown:
            what = "picture type" if pictures else "record type"
            known = ", ".join(sorted(w for w in table if w))
            raise bad_parameters(
                f"<metadataDescriptor> {sent[unknown[0]][:64]!r}: not a {what} ({known})"
            )
    return frozenset(sent)


def _search_page(doc: XmlIn) -> tuple[int, int]:
    """(offset, limit); Hikvision spells the position `searchResultPostion`, others not."""
    limit = doc.int("maxResults", DEFAULT_RESULTS)
    offset = doc.int("searchResultPostion")
    offset = doc.int("searchResultPosition", 0) if offset is None else offset
    assert limit is not None and offset is not None
    if not 1 <= limit <= MAX_RESULTS:
        raise bad_parameters(f"<maxResults> is 1 to {MAX_RESULTS}")
    if not 0 <= offset <= MAX_POSITION:
        raise bad_parameters(f"<searchResultPosition> is 0 to {MAX_POSITION}")
    return offset, limit


def parse_search(doc: XmlIn, config: Config) -> FootageQuery:
    """A `CMSearchDescription` -> the query; raises IsapiError."""
    search_id = doc.text("searchID", "", max_len=64) or ""
    sources = _search_sources(doc, config)
    start_us, end_us = _search_span(doc, config)
    offset, limit = _search_page(doc)
    words = _search_words(doc, sources)
    contents = _texts(doc, "contentTypeList", "contentType", 4) or []
    doc.finish()
    unknown = [c for c in contents if c not in ("video", "metadata")]
    if unknown:
        raise bad_parameters(f"<contentType> {unknown[0][:16]!r}: only video and pictures")
    return FootageQuery(search_id, sources, start_us, end_us, words, offset, limit)


Found = tuple[Source, Segment | Picture]


def _count(index: RecordingIndex, source: Source, query: FootageQuery) -> int:
    span = (query.start_us, query.end_us)
    if source.pictures:
        return index.count_pictures(source.track_id // 100, *span, query.picture_types())
    return index.count_overlapping(source.track_id, *span, query.record_types())


def _page(
    index: RecordingIndex, source: Source, query: FootageQuery, limit: int, offset: int
) -> list[Found]:
    span = (query.start_us, query.end_us)
    rows: list[Segment] | list[Picture]
    if source.pictures:
        channel, types = source.track_id // 100, query.picture_types()
        rows = index.pictures_overlapping(channel, *span, types, limit=limit, offset=offset)
    else:
        types = query.record_types()
        rows = index.segments_overlapping(source.track_id, *span, types, limit=limit, offset=offset)
    return [(source, row) for row in rows]


def find_footage(index: RecordingIndex, query: FootageQuery) -> tuple[list[Found], int]:
    """One page of the recordings and pictures that match, track by track, oldest first; and
    how many match. Blocking (SQLite): run it in a thread."""
    page: list[Found] = []
    total, skip = 0, query.offset
    for source in query.sources:
        count = _count(index, source, query)
        total += count
        if skip >= count:
            skip -= count
            continue
        room = query.limit - len(page)
        if room > 0:
            page += _page(index, source, query, room, skip)
        skip = 0
    return page, total


def _utc(at_us: int, *, round_up: bool = False) -> str:
    seconds = -(-at_us // 1_000_000) if round_up else at_us // 1_000_000
    return f"{datetime.fromtimestamp(seconds, UTC):%Y-%m-%dT%H:%M:%SZ}"


def _segment_doc(request: web.Request, segment: Segment, rtsp_port: int) -> dict[str, Any]:
    track_id = segment.stream_id  # the recorder of a track writes its rows under the track's id
    host = request.url.host or "localhost"
    uri = playback_uri(host, rtsp_port, track_id, segment.start_us, segment.end_us)
    return {
        "sourceID": guid(request, "track", track_id),
        "trackID": track_id,
        "timeSpan": {
            "startTime": _utc(segment.start_us),
            "endTime": _utc(segment.end_us, round_up=True),
        },
        "mediaSegmentDescriptor": {
            "contentType": "video",
            "codecType": SEGMENT_CODECS.get(segment.codec, segment.codec),
            "playbackURI": uri,
        },
        "metadataMatches": {
            "metadataDescriptor": f"{RECORD_META}/{RESULT_WORDS[segment.record_type]}"
        },
    }


def _picture_doc(request: web.Request, track_id: int, picture: Picture) -> dict[str, Any]:
    return {
        "sourceID": guid(request, "pictures", track_id),
        "trackID": track_id,
        "timeSpan": {"startTime": _utc(picture.taken_us), "endTime": _utc(picture.taken_us)},
        "mediaSegmentDescriptor": {
            "contentType": "metadata",
            "codecType": "jpeg",
            "playbackURI": f"{request.scheme}://{request.host}{picture_uri(picture)}",
        },
        "metadataMatches": {"metadataDescriptor": f"{RECORD_META}/{picture.event_type}"},
    }


def _match_doc(request: web.Request, found: Found, rtsp_port: int) -> dict[str, Any]:
    source, row = found
    if isinstance(row, Picture):
        return _picture_doc(request, source.track_id, row)
    return _segment_doc(request, row, rtsp_port)


@routes.post("/ISAPI/ContentMgmt/search")
@routes.get("/ISAPI/ContentMgmt/search")
@requires("playBack")
async def search_footage(request: web.Request) -> web.Response:
    ctx = context(request)
    config = ctx.store.current
    query = parse_search(await read_xml(request, "CMSearchDescription"), config)
    index = ctx.recording.index
    found, total = await asyncio.to_thread(find_footage, index, query) if index else ([], 0)
    items = [_match_doc(request, f, config.ports.rtsp) for f in found]
    return search_result(query.search_id, query.offset, items, total)


# -- which days of a month have footage --------------------------------------------------------
def _month(doc: XmlIn, track_id: int, zone: tzinfo) -> datetime:
    """`trackDailyParam` -> the first instant of that month, device local time."""
    year, month = doc.int("year"), doc.int("monthOfYear")
    asked = doc.int("trackID", track_id)
    doc.finish()
    if year is None or month is None:
        raise bad_xml_content("<trackDailyParam> needs <year> and <monthOfYear>")
    if asked != track_id:
        raise bad_parameters("<trackID> does not match the URL")
    if not (2000 <= year <= 2099 and 1 <= month <= 12):
        raise bad_parameters("<year> is 2000 to 2099, <monthOfYear> 1 to 12")
    return datetime(year, month, 1, tzinfo=zone)


def month_footage(index: RecordingIndex, track_id: int, first: datetime) -> dict[int, str]:
    """Day of the month -> "time" (it has continuous footage) or "event" (only other footage).

    Blocking (SQLite): run it in a thread. Days are the device's local days."""
    days: dict[int, str] = {}
    for day in range(1, calendar.monthrange(first.year, first.month)[1] + 1):
        start = _us(first + timedelta(days=day - 1))
        end = start + DAY_US
        if index.count_overlapping(track_id, start, end, ["continuous"]):
            days[day] = "time"
        elif index.count_overlapping(track_id, start, end):
            days[day] = "event"
    return days


@routes.post("/ISAPI/ContentMgmt/record/tracks/{id}/dailyDistribution")
@routes.get("/ISAPI/ContentMgmt/record/tracks/{id}/dailyDistribution")
@requires("playBack")
async def daily_distribution(request: web.Request) -> web.Response:
    ctx = context(request)
    config = ctx.store.current
    track = by_url_id(request, config.record.tracks, "record track")
    zone = parse_time_zone(config.time.time_zone)
    first = _month(await read_xml(request, "trackDailyParam"), track.id, zone)
    index = ctx.recording.index
    days = await asyncio.to_thread(month_footage, index, track.id, first) if index else {}
    length = calendar.monthrange(first.year, first.month)[1]
    listed = [
        {"id": d, "dayOfMonth": d, "record": d in days, "recordType": days.get(d)}
        for d in range(1, length + 1)
    ]
    return xml_response(render("trackDailyDistribution", {"dayList": {"day": listed}}))
