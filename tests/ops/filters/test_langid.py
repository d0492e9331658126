from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

from instructkit.ops.filters import _langid

# Our own sentences (no third-party text), one clear paragraph per language.
CLEAR = {
    "en": "The committee will meet again next week to discuss the budget and the new hiring plan for the team.",
    "fr": "Le comité se réunira de nouveau la semaine prochaine pour discuter du budget et du plan d'embauche.",
    "de": "Der Ausschuss trifft sich nächste Woche wieder, um über das Budget und den neuen Einstellungsplan zu sprechen.",
    "es": "El comité se reunirá de nuevo la próxima semana para hablar del presupuesto y del nuevo plan de contratación.",
    "ru": "Комитет снова соберётся на следующей неделе, чтобы обсудить бюджет и новый план найма сотрудников.",
    "zh-cn": "委员会将于下周再次开会，讨论预算和团队的新招聘计划，并确定下一阶段的工作重点。",
    "ja": "委員会は来週もう一度集まり、予算とチームの新しい採用計画について話し合う予定です。",
    "ar": "ستجتمع اللجنة مرة أخرى الأسبوع المقبل لمناقشة الميزانية وخطة التوظيف الجديدة للفريق.",
}


def test_matches_seeded_langdetect_on_clear_text():
    from langdetect import DetectorFactory, detect

    DetectorFactory.seed = 0
    texts = list(CLEAR.values())
    langs, probs, feats = _langid.detect(pa.array(texts))
    reference = [detect(t) for t in texts]
    assert list(langs) == reference
    assert list(langs) == list(CLEAR)  # and both are right
    assert (probs > 0.5).all() and (feats > 50).all()


def test_result_does_not_depend_on_batch_composition():
    texts = list(CLEAR.values())
    together = _langid.detect(pa.array(texts))
    for i, t in enumerate(texts):
        alone = _langid.detect(pa.array([t]))
        assert alone[0][0] == together[0][i]
        assert alone[1][0] == together[1][i]


def test_identical_across_processes():
    texts = list(CLEAR.values()) + ["ok", "Hammer and handkerchief.", "1 2 3"]
    langs, probs, feats = _langid.detect(pa.array(texts))
    code = (
        "import json,sys,pyarrow as pa;from instructkit.ops.filters import _langid as L;"
        "t=json.loads(sys.stdin.read());l,p,f=L.detect(pa.array(t));"
        "print(json.dumps([list(l),[float(x) for x in p],[int(x) for x in f]]))"
    )
    out = subprocess.run([sys.executable, "-c", code], input=json.dumps(texts), capture_output=True, text=True, check=True)
    other = json.loads(out.stdout)
    assert other[0] == list(langs)
    assert other[1] == [float(x) for x in probs]
    assert other[2] == [int(x) for x in feats]


def test_bad_input_is_deterministic_and_bounded():
    huge = "word " * 200_000  # 1 MB
    texts = pa.array(["", "   \n\t ", "😀🎉🔥", None, "Hello Привет 你好 مرحبا", huge, "abc" * 10])
    a = _langid.detect(texts, sample_chars=500)
    b = _langid.detect(texts, sample_chars=500)
    assert list(a[0]) == list(b[0]) and np.array_equal(a[1], b[1])
    assert list(a[0][:4]) == ["unknown"] * 4
    assert (a[1][:4] == 0).all()
    assert a[2][5] <= 3 * 500  # a 1 MB text costs no more than its bounded sample


def test_invalid_utf8_in_buffer_does_not_crash():
    # A lone surrogate encoded as UTF-8 (CESU style) cannot come from Python str, but can from files.
    data = b"caf\xed\xa0\x80 au lait et croissant chaud"
    offsets = pa.py_buffer(np.array([0, len(data)], dtype=np.int32).tobytes())
    arr = pa.Array.from_buffers(pa.string(), 1, [None, offsets, pa.py_buffer(data)])
    langs, probs, _ = _langid.detect(arr)
    assert langs[0] == _langid.detect(arr)[0][0]
    assert probs[0] >= 0


@pytest.mark.parametrize("text", [
    "THE UNITED NATIONS GENERAL ASSEMBLY met in New York",
    "Ça va? «Très bien», merci -- et toi... 123 fois!",
    "Mixed 漢字 and かな, 한국어 and Ελληνικά in one line",
    CLEAR["ru"],
    CLEAR["ar"] + " with some Latin words",
])
def test_extracts_exactly_langdetects_ngrams(text):
    """Same normalisation, ALL-CAPS rule and Latin cleaning as langdetect: same n-gram count."""
    from langdetect import DetectorFactory

    factory = DetectorFactory()
    factory.load_profile(_langid._profiles_dir())
    det = factory.create()
    det.append(text)
    det.cleaning_text()
    expected = len(det._extract_ngrams())
    _, _, feats = _langid.detect(pa.array([text]), sample_chars=10_000)
    assert feats[0] == expected
