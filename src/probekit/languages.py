"""Language codes: probekit uses ISO 639-3 codes (``eng``, ``cmn``, ``swh``); this module maps
them to each model's scheme and says which languages a model supports."""

from __future__ import annotations

from .errors import ProbekitError, closest

# The 57 languages with a SONAR speech encoder (``sonar_speech_encoder_<code>``) and their NLLB
# codes, which SONAR's text encoder uses.
SONAR_NLLB = {
    "arb": "arb_Arab", "cat": "cat_Latn", "cym": "cym_Latn", "dan": "dan_Latn", "deu": "deu_Latn",
    "eng": "eng_Latn", "est": "est_Latn", "fin": "fin_Latn", "fra": "fra_Latn", "ind": "ind_Latn",
    "ita": "ita_Latn", "kor": "kor_Hang", "nld": "nld_Latn", "pes": "pes_Arab", "por": "por_Latn",
    "ron": "ron_Latn", "spa": "spa_Latn", "swh": "swh_Latn", "tgl": "tgl_Latn", "tur": "tur_Latn",
    "uzn": "uzn_Latn", "asm": "asm_Beng", "bel": "bel_Cyrl", "ben": "ben_Beng", "bos": "bos_Latn",
    "bul": "bul_Cyrl", "ces": "ces_Latn", "cmn": "zho_Hans", "guj": "guj_Gujr", "heb": "heb_Hebr",
    "hin": "hin_Deva", "hrv": "hrv_Latn", "jpn": "jpn_Jpan", "kan": "kan_Knda", "lao": "lao_Laoo",
    "lit": "lit_Latn", "lvs": "lvs_Latn", "mal": "mal_Mlym", "mar": "mar_Deva", "mkd": "mkd_Cyrl",
    "mlt": "mlt_Latn", "npi": "npi_Deva", "ory": "ory_Orya", "pan": "pan_Guru", "pol": "pol_Latn",
    "rus": "rus_Cyrl", "slk": "slk_Latn", "slv": "slv_Latn", "snd": "snd_Arab", "srp": "srp_Cyrl",
    "tam": "tam_Taml", "tel": "tel_Telu", "tha": "tha_Thai", "ukr": "ukr_Cyrl", "urd": "urd_Arab",
    "vie": "vie_Latn", "yue": "yue_Hant",
}


class LanguageError(ProbekitError):
    """A language a model does not support, or an unknown code."""


def sonar_speech_code(lang: str) -> str:
    """The suffix of SONAR's speech encoder for ``lang`` (an error if it has none)."""
    if lang not in SONAR_NLLB:
        hint = closest(lang, SONAR_NLLB)
        raise LanguageError(
            f"SONAR has no speech encoder for {lang!r}"
            + (f" (did you mean {', '.join(hint)}?)" if hint else "")
            + f"; it has {len(SONAR_NLLB)}: {' '.join(SONAR_NLLB)}")
    return lang


def sonar_text_code(lang: str) -> str:
    """SONAR's text encoder language code (NLLB style, e.g. ``eng_Latn``)."""
    if "_" in lang:
        return lang
    if lang not in SONAR_NLLB:
        raise LanguageError(f"no NLLB code known for {lang!r}; give it as e.g. 'yor_Latn'")
    return SONAR_NLLB[lang]
