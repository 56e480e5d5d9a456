"""Browser helpers of the QC pages' tests: open a URL, size the viewport, check what a person sees (an
element's centre inside the viewport and not covered), read a Plotly graph, save screenshots.

The same checks as the pages' own helpers, kept here until those land on this branch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dash.testing.wait import until

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
SIZES = ((1600, 1000), (1920, 1080))


def open_page(dash_duo, path: str) -> None:
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


def visibility(dash_duo, selector: str, scroll: bool = True) -> str:
    """'visible' when the element's centre is inside the viewport and a click there hits it (or a
    child); otherwise what is wrong ('missing', 'outside viewport', 'covered by <tag.class>')."""
    return dash_duo.driver.execute_script(
        """
        const element = document.querySelector(arguments[0]);
        if (!element) { return 'missing'; }
        if (arguments[1]) { element.scrollIntoView({block: 'center'}); }
        const box = element.getBoundingClientRect();
        if (box.width === 0 || box.height === 0) { return 'not drawn'; }
        const x = box.left + box.width / 2, y = box.top + box.height / 2;
        if (x < 0 || y < 0 || x > window.innerWidth || y > window.innerHeight) { return 'outside viewport'; }
        const hit = document.elementFromPoint(x, y);
        if (hit && (hit === element || element.contains(hit))) { return 'visible'; }
        return 'covered by ' + (hit ? hit.tagName.toLowerCase() + '.' + hit.className : 'nothing');
        """,
        selector,
        scroll,
    )


def plot(dash_duo, graph_id: str, expression: str) -> Any:
    """A property of a drawn Plotly graph (e.g. `_fullData[0].y`), None while it is not drawn."""
    return dash_duo.driver.execute_script(
        f"try {{ const g = document.querySelector('#{graph_id} .js-plotly-plot'); return {expression}; }}"
        " catch (error) { return null; }"
    )


def screenshot(dash_duo, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    dash_duo.driver.save_screenshot(str(path))
    return path


def console_errors(dash_duo) -> list:
    """Browser console entries of level SEVERE (errors)."""
    return [entry for entry in dash_duo.get_logs() or [] if entry.get("level") == "SEVERE"]
