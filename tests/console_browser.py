#!/usr/bin/python3
"""The web console in a real browser: headless Chromium driven through chromium-driver
(WebDriver) with Debian's python3-selenium. Run by tests/operator.rs against the README's
demo alliance; also by hand:

    tests/console_browser.py --url https://127.0.0.1:26601 --out /tmp/shots --members 4 \
        --peers 3 --name-fragment 包头 \
        --certificate chaincode/tests/fixtures/certs/sm2-bidder.der baotou,hohhot,ordos,yinchuan

It opens every page, follows links from one to the next, searches a subject by a fragment
of its Chinese name, uploads a certificate, verifies a credit record's proof, checks what
each page shows, and the accessibility basics of every page (one h1, no skipped heading
level, a label on every input, the document language, text contrast of at least 4.5:1).
It saves a screenshot of each page to --out and prints one line per page with its load
time. Exits non-zero at the first failed check, naming the page and the check.
"""

import argparse
import os
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

# Every page's accessibility basics, run in the page. Returns a list of problems.
A11Y_JS = r"""
const problems = [];
if (!document.documentElement.lang) problems.push('html has no lang');
const h1s = document.querySelectorAll('h1');
if (h1s.length !== 1) problems.push(`${h1s.length} h1 elements, not 1`);
let last = 0;
for (const h of document.querySelectorAll('h1,h2,h3,h4,h5,h6')) {
  const level = Number(h.tagName[1]);
  if (last && level > last + 1) problems.push(`heading ${h.tagName} "${h.textContent.trim()}" skips a level after h${last}`);
  last = level;
}
for (const el of document.querySelectorAll('input,select,textarea')) {
  if (el.type === 'hidden' || el.type === 'submit') continue;
  const byFor = el.id && document.querySelector(`label[for="${el.id}"]`);
  const wrapped = el.closest('label');
  if (!byFor && !wrapped && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
    problems.push(`input ${el.name || el.id || el.type} has no label`);
}
for (const svg of document.querySelectorAll('svg')) {
  if (!svg.getAttribute('role') || !(svg.getAttribute('aria-labelledby') || svg.getAttribute('aria-label')))
    problems.push('an svg chart without role and label');
}
function rgb(s) { const m = s.match(/rgba?\(([^)]+)\)/); if (!m) return null;
  const p = m[1].split(',').map(Number); return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; }
function lum(c) { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); }
function background(el) {
  for (let e = el; e; e = e.parentElement) {
    const c = rgb(getComputedStyle(e).backgroundColor);
    if (c && c.a > 0) return c;
  }
  return {r: 255, g: 255, b: 255, a: 1};
}
let checked = 0;
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
const seen = new Set();
while (walker.nextNode()) {
  const el = walker.currentNode.parentElement;
  if (!el || seen.has(el) || !walker.currentNode.textContent.trim()) continue;
  seen.add(el);
  if (el.closest('svg')) continue;
  const style = getComputedStyle(el);
  if (style.visibility === 'hidden' || style.display === 'none' || el.getClientRects().length === 0) continue;
  const fg = rgb(style.color), bg = background(el);
  if (!fg) continue;
  const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
  const ratio = (a + 0.05) / (b + 0.05);
  checked++;
  if (ratio < 4.5) problems.push(`contrast ${ratio.toFixed(2)}:1 for "${walker.currentNode.textContent.trim().slice(0, 30)}"`);
}
if (checked === 0) problems.push('no visible text found');
return problems;
"""


class Console:
    def __init__(self, url, out):
        self.url = url.rstrip("/")
        self.out = out
        self.shots = []
        self.timings = []
        options = webdriver.ChromeOptions()
        options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-dev-shm-usage", "--window-size=1366,1000", "--lang=zh-CN"):
            options.add_argument(arg)
        # The alliance's API certificates come from its own CA.
        options.accept_insecure_certs = True
        # Starting a browser on a loaded machine now and then times out: three tries.
        for attempt in range(3):
            try:
                service = Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
                self.driver = webdriver.Chrome(service=service, options=options)
                break
            except WebDriverException as e:
                print(f"starting Chromium, try {attempt + 1}: {e.msg}", file=sys.stderr)
                if attempt == 2:
                    raise
        self.driver.set_page_load_timeout(60)

    def fail(self, what):
        shot = os.path.join(self.out, "FAILED.png")
        try:
            self.driver.save_screenshot(shot)
        except Exception:  # noqa: BLE001 - the failure is what matters
            pass
        try:
            print(f"FAILED at {self.driver.current_url}: {what}", file=sys.stderr)
            print(self.driver.find_element(By.TAG_NAME, "body").text[:3000], file=sys.stderr)
        except WebDriverException:
            print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)

    def check(self, ok, what):
        if not ok:
            self.fail(what)

    def loaded(self, name, started):
        """After a navigation: times it, checks the page, saves its screenshot."""
        elapsed = time.monotonic() - started
        nav = self.driver.execute_script(
            "const e = performance.getEntriesByType('navigation')[0];"
            "return e ? e.responseEnd - e.requestStart : null;")
        self.timings.append((name, elapsed, nav))
        h1 = self.driver.find_elements(By.TAG_NAME, "h1")
        self.check(h1, f"{name}: no h1")
        self.check("出错了" not in h1[0].text and "请求有误" not in h1[0].text,
                   f"{name}: an error page: {h1[0].text}")
        problems = self.driver.execute_script(A11Y_JS)
        self.check(not problems, f"{name}: accessibility: {problems}")
        path = os.path.join(self.out, f"{len(self.shots) + 1:02d}-{name}.png")
        # The whole page, not only the window (up to 6000 pixels tall).
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.set_window_size(1366, max(800, min(int(height), 6000)))
        self.driver.save_screenshot(path)
        self.driver.set_window_size(1366, 1000)
        self.shots.append(path)
        print(f"page {name}: {elapsed * 1000:.0f} ms in the browser"
              f" ({nav:.0f} ms request to response), screenshot {path}" if nav is not None else
              f"page {name}: {elapsed * 1000:.0f} ms, screenshot {path}")
        return h1[0].text

    def open(self, name, path):
        started = time.monotonic()
        self.driver.get(self.url + path)
        return self.loaded(name, started)

    def click(self, name, element):
        started = time.monotonic()
        element.click()
        return self.loaded(name, started)

    def submit(self, name, form):
        started = time.monotonic()
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        return self.loaded(name, started)

    def one(self, css):
        found = self.driver.find_elements(By.CSS_SELECTOR, css)
        self.check(found, f"nothing matches {css}")
        return found[0]

    def rows(self, table_id):
        return self.driver.find_elements(By.CSS_SELECTOR, f"#{table_id} tbody tr")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the member's API base URL")
    parser.add_argument("--out", required=True, help="where screenshots go")
    parser.add_argument("--members", type=int, required=True, help="how many members the alliance has")
    parser.add_argument("--peers", type=int, required=True, help="how many of them the node is connected to")
    parser.add_argument("--name-fragment", required=True, help="part of a subject's Chinese name")
    parser.add_argument("--certificate", nargs=2, action="append", required=True,
                        metavar=("FILE", "MEMBERS"),
                        help="a bidder certificate (PEM or DER) and the members (a,b,c) that "
                             "recognize it; the others must not, each with a reason")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    c = Console(args.url, args.out)
    try:
        run(c, args)
    except WebDriverException as e:
        # Selenium's message, without chromedriver's native stack.
        c.fail(f"{type(e).__name__}: {e.msg}")
    finally:
        c.driver.quit()
    print(f"{len(c.shots)} screenshots in {args.out}")
    times = sorted(t for _, t, _ in c.timings)
    p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
    print(f"{len(times)} page loads: median {times[len(times) // 2] * 1000:.0f} ms, "
          f"p95 {p95 * 1000:.0f} ms, slowest {times[-1] * 1000:.0f} ms")


def run(c, args):
    """Every page, in the order a person would reach them."""
    d = c.driver
    # 1. The alliance: every member, the chart, the newest blocks; a block from there.
    title = c.open("alliance", "/console")
    c.check(title == "联盟概览", f"alliance title {title!r}")
    c.check(len(c.rows("members")) == args.members, f"{len(c.rows('members'))} member rows")
    c.check("在线" in c.one("#members").text, "no member shown online")
    online = [r for r in c.rows("members") if "● 在线" in r.text]
    c.check(len(online) == args.peers + 1, f"{len(online)} members online")
    for row in online:
        shown = row.find_elements(By.TAG_NAME, "td")[5].text
        c.check(shown.isdigit() and int(shown) > 0, f"online member's height {shown!r}")
    c.one("#rate-chart")
    height = int(c.one("#height").text)
    c.check(height > 0, "height 0")
    title = c.click("block-from-alliance", c.one("#recent-blocks tbody tr td a"))
    c.check(title.startswith("区块 "), f"block title {title!r}")

    # 2. A subject by a fragment of its Chinese name, typed into the search box.
    c.open("subjects", "/console/subjects")
    box = c.one("#q")
    box.send_keys(args.name_fragment)
    c.submit("subjects-search", c.one("form[role=search].filters"))
    hits = d.find_elements(By.CSS_SELECTOR, "#starts-with tbody tr td a, #contains tbody tr td a")
    c.check(hits, f"no subject found for {args.name_fragment!r}")
    c.check(all(args.name_fragment in h.text for h in hits),
            f"a hit without {args.name_fragment!r}: {[h.text for h in hits]}")
    name = hits[0].text
    title = c.click("subject", hits[0])
    c.check(title == name, f"subject page {title!r} for {name!r}")
    answer = c.one("#bid-answer").text
    c.check("受限" in answer, f"bid answer {answer!r}")
    c.one("#versions")

    # A barred subject, found from the credit list: its answer names the record.
    c.open("credit", "/console/credit?kind=blacklist")
    first = c.one("table.records tbody tr td a")
    record_id = first.text
    title = c.click("credit-record", first)
    c.check(record_id in title, f"record page {title!r}")
    c.click("credit-record-verified", c.one("#verify"))
    verdict = c.one("#verdict").text
    c.check("验证通过" in verdict, f"proof verdict {verdict!r}")
    checks = c.rows("checks")
    c.check(len(checks) == 4 and all("✔" in r.text for r in checks),
            f"checks: {[r.text for r in checks]}")
    subject_link = d.find_element(By.CSS_SELECTOR, "dl.facts dd a")
    c.click("barred-subject", subject_link)
    answer = c.one("#bid-answer").text
    c.check("不得参与投标" in answer, f"blacklisted subject's answer {answer!r}")

    # 3. Certificates: the issuers, then an upload checked per member.
    c.open("certificates", "/console/certificates")
    c.check(c.rows("issuers"), "no registered CA")
    for n, (path, members) in enumerate(args.certificate):
        expected = set(members.split(","))
        c.one("#file").send_keys(os.path.abspath(path))
        c.submit(f"certificate-{n + 1}", c.one("#verify-form"))
        rows = c.rows("per-member")
        c.check(len(rows) == args.members, f"{len(rows)} per-member rows")
        for row in rows:
            member, result = [td.text for td in row.find_elements(By.TAG_NAME, "td")][:2]
            if member in expected:
                c.check(result == "✔ 认可", f"{member}: {result!r}, expected recognized")
            else:
                c.check(result == "✘ 不认可" and row.find_elements(By.CSS_SELECTOR, "li"),
                        f"{member}: {result!r} (or no reason), expected not recognized")
        verdict = c.one("#alliance-verdict").text
        everyone = len(expected) == args.members
        c.check(verdict == ("✔ 全联盟认可" if everyone else "✘ 并非全联盟认可"),
                f"alliance verdict {verdict!r}")

    # 4. Experts and extractions; a published one re-derived seat by seat.
    c.open("experts", "/console/experts")
    c.check(c.rows("pool"), "empty pool table")
    links = d.find_elements(By.CSS_SELECTOR, "#extractions tbody tr td:first-child a")
    c.check(links, "no extraction listed")
    published = [row for row in c.rows("extractions") if "核验通过" in row.text]
    c.check(published, "no verified extraction listed")
    c.click("extraction", published[0].find_element(By.CSS_SELECTOR, "td a"))
    c.check("核验通过" in c.one("#chain-verdict").text, "chain verdict")
    c.check("一致" in c.one("#recheck").text, "this node's recheck")
    seats = c.rows("seats")
    c.check(seats and all("✔ 一致" in s.text for s in seats if "入席" in s.text),
            f"seats: {[s.text for s in seats]}")

    # 5. The explorer: blocks, a block's transactions, a transaction, found by its hash.
    c.open("blocks", "/console/blocks")
    c.check(len(c.rows("blocks")) > 5, "few blocks listed")
    with_txs = [r for r in c.rows("blocks") if r.find_elements(By.TAG_NAME, "td")[2].text != "0"]
    c.check(with_txs, "no block with transactions")
    c.click("block", with_txs[0].find_element(By.CSS_SELECTOR, "td a"))
    tx_link = c.one("#txs tbody tr td:nth-child(2) a")
    tx_hash = tx_link.get_attribute("href").rsplit("/", 1)[1]
    c.open("blocks-again", "/console/blocks")
    c.one("#go").send_keys(tx_hash)
    title = c.submit("tx-by-hash", c.one("form[role=search].filters"))
    c.check(title.startswith("交易 "), f"tx title {title!r}")
    c.check(tx_hash in c.one("dl.facts").text, "the transaction's hash")

    # 6. The node.
    c.open("node", "/console/node")
    c.check(len(c.rows("peers")) == args.peers, f"{len(c.rows('peers'))} peers")
    c.one("#metrics")

    # The login page (a remote caller without a token lands there).
    c.open("login", "/console/login")
    c.one("label[for=token]")


if __name__ == "__main__":
    main()
