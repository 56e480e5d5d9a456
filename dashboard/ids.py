"""Every component id of the dashboard, in one place, namespaced per page (`shell-`, `runs-`, `run-`).

Callbacks of all pages are registered on one app, so two pages must never share an id; a page adds its
own class here. Tests import these names rather than repeating the strings.
"""

from __future__ import annotations


class Shell:
    """The frame around every page: URL, navbar, page container, connection banner."""

    LOCATION = "shell-url"
    PAGE = "shell-page"
    NAVBAR = "shell-navbar"
    CONNECTION_LOST = "shell-connection-lost"
    SERVER_ERROR = "shell-server-error"
    LOCAL_BADGE = "shell-local-mode"
    LOCAL_BANNER = "shell-local-mode-banner"
    USER_NAME = "shell-user-name"
    USER_ROLE = "shell-user-role"
    LOGOUT = "shell-logout"


class Runs:
    """`/` and `/runs`: the run list."""

    LOCATION = "runs-url"  # the page's own view of the URL: ?page=N
    TABLE = "runs-table"
    PAGINATION = "runs-pagination"
    PAGINATION_BOTTOM = "runs-pagination-bottom"  # the same pager under the table
    PAGE_INFO = "runs-page-info"
    SHOWN_SEARCH = "runs-shown-search"  # the ?page= of the page shown, written over a clamped request
    URL_FIXED = "runs-url-fixed"
    JUMP_INPUT = "runs-jump-input"
    JUMP_BUTTON = "runs-jump-button"
    JUMP_ERROR = "runs-jump-error"
    REFRESH = "runs-refresh"
    SHOWN = "runs-shown"


class Run:
    """`/run/<run>/<SYS>`: one run and subsystem."""

    LOCATION = "run-url"
    TITLE = "run-title"
    SUBSYSTEM_LINKS = "run-subsystem-links"
    RUN_STATE = "run-state"
    RECEIVER_STATE = "run-receiver-state"  # the state of the receiver behind the run, each refresh
    RECEIVER = "run-receiver"  # that state's value alone, for the live badge
    LIVE_BADGE = "run-live-badge"
    PAUSE = "run-pause"
    BACK_TO_LIVE = "run-back-to-live"
    LIVE_STATE = "run-live-state"
    REFRESH = "run-refresh"
    LIVE_TICK = "run-live-tick"
    LIVE_HELD = "run-live-held"  # why assets/live.js holds live updates back now (None: it does not)
    NEWS = "run-news"
    GROUP = "run-group"
    HISTOGRAM = "run-histogram"
    LOG_X = "run-log-x"
    LOG_Y = "run-log-y"
    LOG_Z = "run-log-z"
    SLIDER = "run-slice-range"
    SLICE_MIN = "run-slice-min"
    SLICE_MAX = "run-slice-max"
    APPLY = "run-slice-apply"
    FULL_RUN = "run-slice-reset"
    MODE = "run-merger-mode"
    SCALE = "run-opt-scale"
    THRESHOLD = "run-opt-threshold"
    PLUGIN_OPTION = "run-opt-plugin"  # pattern-matching id: {"type": PLUGIN_OPTION, "name": <option>}
    INPUT_ERROR = "run-options-error"
    VIEW_ERROR = "run-view-error"
    GRAPH = "run-graph"
    GRAPH_LOADING = "run-graph-loading"
    SLICE_BANNER = "run-slice-description"
    WARNINGS = "run-warnings"
    CAPTION = "run-snapshot-caption"
    CHECKS = "run-check-results"
    GRAPH_KEY = "run-graph-key"
    DOWNLOAD_PNG = "run-download-png"
    DOWNLOAD_SVG = "run-download-svg"
    DOWNLOAD_ROOT = "run-download-root"
    DOWNLOAD_PARQUET = "run-download-parquet"
    DOWNLOAD_DONE = "run-download-done"
    NO_OPTIONS = "run-no-options"
    HEAVY_BOX = "run-heavy-box"
    HEAVY_LABEL = "run-heavy-label"
    HEAVY_REQUEST = "run-heavy-request"
    HEAVY_PROGRESS = "run-heavy-progress"
    HEAVY_CANCEL = "run-heavy-cancel"
    HEAVY_DONE = "run-heavy-done"
    EXPERT_NOTE = "run-expert-note"


class Trending:
    """`/trending/<SYS>`: one trended quantity against time or run number."""

    LOCATION = "trend-url"
    REFRESH = "trend-refresh"
    RUN = "trend-run"
    HISTOGRAM = "trend-histogram"
    QUANTITY = "trend-quantity"
    CONTENT = "trend-content"
    AXIS = "trend-axis"
    GRAPH = "trend-graph"
    SUMMARY = "trend-summary"
    LIMITS = "trend-limits"
    RUN_PAGE_LINK = "trend-run-page-link"
    DOWNLOAD_CSV = "trend-download-csv"
    DOWNLOAD_PARQUET = "trend-download-parquet"
    DOWNLOAD_PNG = "trend-download-png"
    DOWNLOAD_SVG = "trend-download-svg"
    DOWNLOAD_DONE = "trend-download-done"
    KEY = "trend-shown-key"
    NOTE = "trend-note"  # what the URL asked for that is not trended, and what is shown instead
    NOTE_FOR = "trend-note-for"  # the query the note is about
    NEWER_RUN = "trend-newer-run"


class Alarms:
    """`/alarms`: active, acknowledged, muted and recent alarms; acknowledge, mute, thresholds."""

    WHO = "alarms-who"
    MESSAGE = "alarms-message"
    SECTIONS = "alarms-sections"
    REFRESH = "alarms-refresh"
    KEY = "alarms-shown-key"
    CHANGED = "alarms-changed"
    ACKNOWLEDGE = "alarms-ack"  # pattern-matching: {"type": ACKNOWLEDGE, "alarm": <alarm_id>}
    MUTE = "alarms-mute"  # pattern-matching: {"type": MUTE, "alarm": <alarm_id>}
    MUTE_FOR = "alarms-mute-for"  # pattern-matching: {"type": MUTE_FOR, "alarm": <alarm_id>}
    LAST_SEEN = "alarms-last-seen"  # pattern-matching: {"type": LAST_SEEN, "alarm": <alarm_id>}
    PARAMETER = "alarms-threshold-parameter"
    BEAM = "alarms-threshold-beam"
    VALUE = "alarms-threshold-value"
    CHANGE = "alarms-threshold-change"
    PARAMETERS_TABLE = "alarms-threshold-table"
    CHANGE_LOG = "alarms-threshold-log"


class RunQC:
    """The QC pieces of the run page (`dashboard.components.qc_panel`)."""

    STRIP = "runqc-strip"
    REFERENCE = "runqc-reference"
    REFERENCE_GRAPH = "runqc-reference-graph"
    REFERENCE_GRAPH_BOX = "runqc-reference-graph-box"
    REFERENCE_INFO = "runqc-reference-info"
    REFERENCE_WHO = "runqc-reference-who"
    SET_REFERENCE = "runqc-set-reference"
    REFERENCE_MESSAGE = "runqc-reference-message"
    HISTORY = "runqc-history"


class System:
    """`/system`: the run coordinator's status page. Per-receiver cells: `f"{CELL}-{field}-{SYS}"`."""

    REFRESH = "system-refresh"
    CONTENT = "system-content"
    SUMMARY = "system-summary"
    RECEIVERS = "system-receivers"
    CELL = "system-cell"
    RUN = "system-run"
    FOLDER = "system-folder"
    SITES = "system-sites"
    QC = "system-qc"

    @staticmethod
    def cell(field: str, subsystem: str) -> str:
        return f"{System.CELL}-{field}-{subsystem}"


class ControlRoom:
    """`/control-room`: the big screen. Tiles: `f"{TILE}-{SYS}"`."""

    PAGE = "control-room-page"
    RUN = "control-room-run"
    CLOCK = "control-room-clock"
    TILES = "control-room-tiles"
    TILE = "control-room-tile"
    TILE_REFRESH = "control-room-tile-refresh"
    ROTATE = "control-room-rotate"
    POSITION = "control-room-position"  # dcc.Store: index of the group on screen
    PLOT_TITLE = "control-room-plot-title"
    GRAPH = "control-room-graph"
    NOTE = "control-room-note"
    ALERT = "control-room-alert"  # the banner: every source silent, QC service stopped

    @staticmethod
    def tile(subsystem: str) -> str:
        return f"{ControlRoom.TILE}-{subsystem}"
