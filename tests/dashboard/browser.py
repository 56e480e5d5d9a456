"""What the dashboard browser tests share: opening a page by its URL, sizing the viewport, checking that
an element is really visible (in the viewport and not covered), reading the drawn Plotly graph, picking
Dash 4 dropdown options by their label, typing into boxes, and saving screenshots to artifacts/ for a
person to look at."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from dash.testing.errors import TestingTimeoutError
from dash.testing.wait import until
from selenium.webdriver.common.keys import Keys

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
# The sizes every page is looked at: a desk screen and the control room's.
SIZES = ((1600, 1000), (1920, 1080))
GRAPH_JS = "document.querySelector('#run-graph .js-plotly-plot')"


def open_page(dash_duo, path: str) -> None:
    """Load `path` (with its query) in the browser, as a person typing the URL or opening a link."""
    dash_duo.driver.get(dash_duo.server_url.rstrip("/") + path)


def set_viewport(dash_duo, width: int, height: int) -> None:
    """Make the page area (not the window with its frame) `width` x `height` CSS pixels."""
    driver = dash_duo.driver
    driver.set_window_size(width, height)
    inner = driver.execute_script("return [window.innerWidth, window.innerHeight];")
    driver.set_window_size(width + (width - inner[0]), height + (height - inner[1]))
    until(
        lambda: driver.execute_script("return [window.innerWidth, window.innerHeight];") == [width, height], 5
    )


def visibility(dash_duo, selector: str, scroll: str | None = "nearest", probe: str = "top") -> str:
    """'visible' when a point of the element is inside the viewport (after scrolling it into view, as a
    person would: `scroll` is scrollIntoView's block, None for no scrolling) and the element (or its
    child) is what a click there would hit; otherwise what is wrong ('missing', 'outside viewport',
    'covered by <tag.class>'). The point is at the horizontal centre, 10 px below the top (`probe`
    "top": a text's first line) or at the vertical centre too ("centre": a plot)."""
    return dash_duo.driver.execute_script(
        """
        const element = document.querySelector(arguments[0]);
        if (!element) { return 'missing'; }
        if (arguments[1]) { element.scrollIntoView({block: arguments[1]}); }
        const box = element.getBoundingClientRect();
        if (box.width === 0 || box.height === 0) { return 'not drawn'; }
        const x = box.left + box.width / 2;
        const y = box.top + (arguments[2] === 'centre' ? box.height / 2 : Math.min(box.height / 2, 10));
        if (x < 0 || y < 0 || x > window.innerWidth || y > window.innerHeight) { return 'outside viewport'; }
        const hit = document.elementFromPoint(x, y);
        if (hit && (hit === element || element.contains(hit))) { return 'visible'; }
        return 'covered by ' + (hit ? hit.tagName.toLowerCase() + '.' + hit.className : 'nothing');
        """,
        selector,
        scroll,
        probe,
    )


def in_viewport_without_scrolling(dash_duo, selector: str) -> bool:
    """Whether the element's top lies inside the viewport as the page is (no scrolling)."""
    return dash_duo.driver.execute_script(
        """const e = document.querySelector(arguments[0]); if (!e) { return false; }
        const box = e.getBoundingClientRect(); return box.top >= 0 && box.top < window.innerHeight;""",
        selector,
    )


def current_search(dash_duo) -> str:
    return dash_duo.driver.execute_script("return window.location.search;")


def graph(dash_duo, expression: str) -> Any:
    """A property of the drawn Plotly graph, or None while it is not drawn yet."""
    return dash_duo.driver.execute_script(
        f"try {{ return {GRAPH_JS}.{expression}; }} catch (error) {{ return null; }}"
    )


def trace_y(dash_duo, trace_name: str) -> list[float] | None:
    """The y values of the named trace as plotted (typed arrays made plain)."""
    return dash_duo.driver.execute_script(
        f"""try {{
            const trace = {GRAPH_JS}._fullData.find(t => t.name === arguments[0]);
            return trace ? Array.from(trace.y) : null;
        }} catch (error) {{ return null; }}""",
        trace_name,
    )


def select(dash_duo, selector: str, label: str) -> None:
    """Pick an option of a Dash 4 dropdown by its label and wait until its menu has closed."""
    until(lambda: not dash_duo.find_elements(".dash-dropdown-options"), timeout=5)
    if dash_duo.find_element(f"{selector}-value").text == label:
        return
    option = _open_and_find(dash_duo, selector, label)
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", option)
    option.click()
    dash_duo.wait_for_text_to_equal(f"{selector}-value", label)
    until(lambda: not dash_duo.find_elements(".dash-dropdown-options"), timeout=5)


def _open_and_find(dash_duo, selector: str, label: str, timeout_s: float = 20.0) -> Any:
    """Open the menu and find the option `label`. A list that a callback is still replacing (a group
    just chosen, on a loaded machine) may open with its old options: close it and open it again."""
    deadline = time.monotonic() + timeout_s
    while True:
        dash_duo.find_element(selector).click()
        try:
            until(lambda: any(o.text == label for o in dash_duo.find_elements(".dash-dropdown-option")), 3)
        except TestingTimeoutError:
            if time.monotonic() > deadline:
                raise
            dash_duo.find_element(selector).send_keys(Keys.ESCAPE)
            until(lambda: not dash_duo.find_elements(".dash-dropdown-options"), timeout=5)
            continue
        return next(o for o in dash_duo.find_elements(".dash-dropdown-option") if o.text == label)


def type_into(dash_duo, selector: str, text: str, enter: bool = False) -> None:
    """Replace what a box holds, as a person would (select all, delete, type)."""
    box = dash_duo.find_element(selector)
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.BACKSPACE)
    box.send_keys(text + (Keys.ENTER if enter else ""))


def screenshot(dash_duo, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    dash_duo.driver.save_screenshot(str(path))
    return path


def plot(dash_duo, graph_id: str, expression: str) -> Any:
    """A property of the drawn Plotly graph inside `#graph_id` (`g`, e.g. `g._fullData[0].y`), None
    while it is not drawn."""
    return dash_duo.driver.execute_script(
        f"try {{ const g = document.querySelector('#{graph_id} .js-plotly-plot'); return {expression}; }}"
        " catch (error) { return null; }"
    )


def console_errors(dash_duo) -> list:
    """Browser console entries of level SEVERE (errors)."""
    return [entry for entry in dash_duo.get_logs() or [] if entry.get("level") == "SEVERE"]


def radio_choice(dash_duo, selector: str) -> str | None:
    """The label of the chosen button of a dbc.RadioItems drawn as buttons, None when none is."""
    chosen = dash_duo.find_elements(f"{selector} label.active")
    return chosen[0].text if chosen else None


def choose_radio(dash_duo, selector: str, label: str) -> None:
    """Click the button labelled `label` of a dbc.RadioItems drawn as buttons."""
    button = next(e for e in dash_duo.find_elements(f"{selector} label") if e.text == label)
    button.click()
    dash_duo.wait_for_text_to_equal(f"{selector} label.active", label)


def plot_fits(dash_duo) -> bool:
    """/control-room: whether the drawn plot lies inside its box and the screen (a banner above it
    can shrink the box)."""
    return dash_duo.driver.execute_script(
        "const plot = document.querySelector('.cr-plot .js-plotly-plot .main-svg');"
        " const box = document.querySelector('.cr-plot');"
        " if (!plot || !box) return false;"
        " const drawn = plot.getBoundingClientRect(), room = box.getBoundingClientRect();"
        " return drawn.bottom <= room.bottom + 1 && drawn.bottom <= window.innerHeight"
        " && drawn.height >= room.height - 2;"
    )
