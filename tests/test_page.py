"""The page at GET /, in a real headless Chromium: type sentences, see labels and bars."""

import shutil

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER), reason="no chromium + chromedriver (apt-get install both)"
)


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    yield driver
    driver.quit()


def label(browser, base: str, text: str, expect: str) -> None:
    """Open the page, type `text`, press Label, wait until `expect` (a CSS selector) shows."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(base + "/")
    WebDriverWait(browser, 30).until(ec.text_to_be_present_in_element((By.ID, "model"), "tiny"))
    browser.find_element(By.ID, "texts").send_keys(text)
    browser.find_element(By.ID, "label-button").click()
    WebDriverWait(browser, 30).until(ec.presence_of_element_located((By.CSS_SELECTOR, expect)))


def test_each_sentence_gets_its_label_probability_and_a_bar_per_class(
    tiny_server, tiny_model, browser
):
    from selenium.webdriver.common.by import By

    from pipeline.classifier import Classifier

    long = " ".join(["fun"] * 40)  # 40 tokens, over the tiny run's 32: read in windows
    label(
        browser, tiny_server, f"a good film\n\n<b>awful</b>\n{long}", ".result + .result + .result"
    )
    expected = Classifier.load(tiny_model).results(["a good film", "<b>awful</b>", long])

    results = browser.find_elements(By.CLASS_NAME, "result")
    assert [r.find_element(By.CLASS_NAME, "text").text for r in results] == [
        "a good film",
        "<b>awful</b>",  # shown as typed, never as HTML
        long,
    ]
    assert expected[2]["windows"] > 1 and not results[0].find_elements(By.CLASS_NAME, "read")
    reads = results[2].find_element(By.CLASS_NAME, "read").text
    assert (
        reads == f"{expected[2]['tokens']} tokens, read whole in {expected[2]['windows']} windows"
    )
    for result, answer in zip(results, expected, strict=True):
        assert result.find_element(By.CLASS_NAME, "label").text == answer["label"]
        assert f"{answer['probability']:.3f}" in result.text
        names = [n.text for n in result.find_elements(By.CLASS_NAME, "name")]
        widths = [f.get_attribute("style") for f in result.find_elements(By.CLASS_NAME, "fill")]
        assert names == ["negative", "positive"]
        assert widths == [f"width: {100 * p:.1f}%;" for p in answer["probabilities"].values()]


def test_a_refused_request_shows_the_servers_message(tiny_server, browser):
    from selenium.webdriver.common.by import By

    label(browser, tiny_server, "a" * 201, "#error:not(:empty)")
    assert "at most 200" in browser.find_element(By.ID, "error").text
