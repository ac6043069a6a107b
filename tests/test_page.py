"""The page at GET /, in a real headless Chromium: type sentences, see labels and bars, and
each word's weight when asked to explain."""

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


def label(browser, base: str, text: str, expect: str, button: str = "label-button") -> None:
    """Open the page, type `text`, press `button`, wait until `expect` (a CSS selector) shows."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(base + "/")
    WebDriverWait(browser, 30).until(ec.text_to_be_present_in_element((By.ID, "model"), "tiny"))
    # as if typed: ChromeDriver's send_keys takes no character beyond the BMP (an emoji)
    browser.execute_script(
        "arguments[0].value = arguments[1]", browser.find_element(By.ID, "texts"), text
    )
    browser.find_element(By.ID, button).click()
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


def after(browser, element) -> str:
    """The content of the element's ::after, its tooltip ("none" when hidden)."""
    return browser.execute_script(
        "return getComputedStyle(arguments[0], '::after').content", element
    )


def test_explain_marks_each_word_by_colour_and_line_and_shows_its_weight_on_focus_and_hover(
    tiny_server, tiny_model, browser
):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from pipeline.classifier import Classifier

    text = "a 😀 good film , <b>fine</b> \U0001d4b3 !"  # astral characters: 2 UTF-16 units each
    label(browser, tiny_server, text, ".word", button="explain-button")
    (want,) = Classifier.load(tiny_model).explain([text])

    (result,) = browser.find_elements(By.CLASS_NAME, "result")
    assert result.find_element(By.CLASS_NAME, "text").text == text  # as typed, never as HTML
    assert result.find_element(By.CLASS_NAME, "label").text == want["label"]
    words = result.find_elements(By.CLASS_NAME, "word")
    assert [word.text for word in words] == [word["word"] for word in want["words"]]
    assert "😀" in [word.text for word in words] and "<" in [word.text for word in words]
    most = max(abs(word["weight"]) for word in want["words"])
    for element, word in zip(words, want["words"], strict=True):
        toward = word["weight"] >= 0
        assert element.get_attribute("tabindex") == "0"
        assert element.value_of_css_property("text-decoration-style") == (
            "solid" if toward else "dotted"
        )  # the cue that is not a colour: the line's style, and its thickness
        thickness = float(element.value_of_css_property("text-decoration-thickness")[:-2])
        assert thickness == pytest.approx(1 + 3 * abs(word["weight"]) / most, abs=0.05)
        assert element.value_of_css_property("background-color") != "rgba(0, 0, 0, 0)"
        shown = element.get_attribute("data-weight")
        assert float(shown.replace("\u2212", "-")) == pytest.approx(word["weight"], rel=0.06)
        assert element.get_attribute("title").startswith(shown)
        assert (
            element.get_attribute("aria-label")
            == f"{word['word']}: {element.get_attribute('title')}"
        )
        assert after(browser, element) == "none"  # no tooltip until focused or pointed at

    ActionChains(browser).send_keys(Keys.TAB).perform()  # from the Explain button: the first word
    assert browser.switch_to.active_element == words[0]
    assert after(browser, words[0]) == f'"{words[0].get_attribute("data-weight")}"'
    ActionChains(browser).move_to_element(words[2]).perform()
    assert after(browser, words[2]) == f'"{words[2].get_attribute("data-weight")}"'

    legend = browser.find_element(By.ID, "legend")
    assert legend.is_displayed()
    assert "solid underline" in legend.text and "dotted underline" in legend.text
    assert "thicker" in legend.text and "Tab" in legend.text
    browser.find_element(By.ID, "label-button").click()  # labeling alone: no words, no legend
    WebDriverWait(browser, 30).until(ec.staleness_of(words[0]))
    assert browser.find_element(By.CLASS_NAME, "label").text == want["label"]
    assert not browser.find_elements(By.CLASS_NAME, "word") and not legend.is_displayed()
