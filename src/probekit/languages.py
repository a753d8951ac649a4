"""Language codes: probekit uses ISO 639-3 codes (``eng``, ``cmn``, ``swh``); this module maps
them to each model's scheme, says which languages a model supports, holds the paper recipes' 30
languages with their resource levels (:data:`PAPER_LANGUAGES`, :func:`describe`), and the
registry of all 102 FLEURS languages with family, genus and script (:data:`REGISTRY`, from
:mod:`probekit.language_table`, which cites its sources) and the named groups a recipe's
``data.languages`` may use (:data:`NAMED_GROUPS`: ``all``, ``paper30``, ``family:X``, ...).

Codes in each model's scheme: SeamlessM4T uses these ISO 639-3 codes as they are (``__eng__``
tokens); SONAR's speech encoders are named by them (``sonar_speech_encoder_eng``) and its text
encoder takes NLLB codes (``eng_Latn``); SALMONN takes no language code (its prompt is English).
FLEURS names configurations by locale (``en_us``, ``cmn_hans_cn``).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ProbekitError, closest
from .language_table import FLEURS_TABLE as _FLEURS_TABLE

# code -> (NLLB code for SONAR's text encoder, FLEURS configuration). These are the 57 languages
# with a SONAR speech encoder (``sonar_speech_encoder_<code>``).
LANGUAGES = {
    "arb": ("arb_Arab", "ar_eg"), "cat": ("cat_Latn", "ca_es"), "cym": ("cym_Latn", "cy_gb"),
    "dan": ("dan_Latn", "da_dk"), "deu": ("deu_Latn", "de_de"), "eng": ("eng_Latn", "en_us"),
    "est": ("est_Latn", "et_ee"), "fin": ("fin_Latn", "fi_fi"), "fra": ("fra_Latn", "fr_fr"),
    "ind": ("ind_Latn", "id_id"), "ita": ("ita_Latn", "it_it"), "kor": ("kor_Hang", "ko_kr"),
    "nld": ("nld_Latn", "nl_nl"), "pes": ("pes_Arab", "fa_ir"), "por": ("por_Latn", "pt_br"),
    "ron": ("ron_Latn", "ro_ro"), "spa": ("spa_Latn", "es_419"), "swh": ("swh_Latn", "sw_ke"),
    "tgl": ("tgl_Latn", "fil_ph"), "tur": ("tur_Latn", "tr_tr"), "uzn": ("uzn_Latn", "uz_uz"),
    "asm": ("asm_Beng", "as_in"), "bel": ("bel_Cyrl", "be_by"), "ben": ("ben_Beng", "bn_in"),
    "bos": ("bos_Latn", "bs_ba"), "bul": ("bul_Cyrl", "bg_bg"), "ces": ("ces_Latn", "cs_cz"),
    "cmn": ("zho_Hans", "cmn_hans_cn"), "guj": ("guj_Gujr", "gu_in"), "heb": ("heb_Hebr", "he_il"),
    "hin": ("hin_Deva", "hi_in"), "hrv": ("hrv_Latn", "hr_hr"), "jpn": ("jpn_Jpan", "ja_jp"),
    "kan": ("kan_Knda", "kn_in"), "lao": ("lao_Laoo", "lo_la"), "lit": ("lit_Latn", "lt_lt"),
    "lvs": ("lvs_Latn", "lv_lv"), "mal": ("mal_Mlym", "ml_in"), "mar": ("mar_Deva", "mr_in"),
    "mkd": ("mkd_Cyrl", "mk_mk"), "mlt": ("mlt_Latn", "mt_mt"), "npi": ("npi_Deva", "ne_np"),
    "ory": ("ory_Orya", "or_in"), "pan": ("pan_Guru", "pa_in"), "pol": ("pol_Latn", "pl_pl"),
    "rus": ("rus_Cyrl", "ru_ru"), "slk": ("slk_Latn", "sk_sk"), "slv": ("slv_Latn", "sl_si"),
    "snd": ("snd_Arab", "sd_in"), "srp": ("srp_Cyrl", "sr_rs"), "tam": ("tam_Taml", "ta_in"),
    "tel": ("tel_Telu", "te_in"), "tha": ("tha_Thai", "th_th"), "ukr": ("ukr_Cyrl", "uk_ua"),
    "urd": ("urd_Arab", "ur_pk"), "vie": ("vie_Latn", "vi_vn"), "yue": ("yue_Hant", "yue_hant_hk"),
}
NAMES = {
    "arb": "Arabic", "cat": "Catalan", "cym": "Welsh", "dan": "Danish", "deu": "German",
    "eng": "English", "est": "Estonian", "fin": "Finnish", "fra": "French", "ind": "Indonesian",
    "ita": "Italian", "kor": "Korean", "nld": "Dutch", "pes": "Persian", "por": "Portuguese",
    "ron": "Romanian", "spa": "Spanish", "swh": "Swahili", "tgl": "Tagalog", "tur": "Turkish",
    "uzn": "Uzbek", "asm": "Assamese", "bel": "Belarusian", "ben": "Bengali", "bos": "Bosnian",
    "bul": "Bulgarian", "ces": "Czech", "cmn": "Mandarin Chinese", "guj": "Gujarati",
    "heb": "Hebrew", "hin": "Hindi", "hrv": "Croatian", "jpn": "Japanese", "kan": "Kannada",
    "lao": "Lao", "lit": "Lithuanian", "lvs": "Latvian", "mal": "Malayalam", "mar": "Marathi",
    "mkd": "Macedonian", "mlt": "Maltese", "npi": "Nepali", "ory": "Odia", "pan": "Punjabi",
    "pol": "Polish", "rus": "Russian", "slk": "Slovak", "slv": "Slovenian", "snd": "Sindhi",
    "srp": "Serbian", "tam": "Tamil", "tel": "Telugu", "tha": "Thai", "ukr": "Ukrainian",
    "urd": "Urdu", "vie": "Vietnamese", "yue": "Cantonese",
}

# The paper recipes' 30 languages (all with a SONAR speech encoder and a FLEURS configuration),
# 15 high- and 15 low-resource. The grouping is probekit's: "high" = languages with abundant web
# text and transcribed speech, "low" = languages with little of either. A recipe may regroup
# with analysis.resource.
RESOURCE = {
    **dict.fromkeys(["eng", "deu", "fra", "spa", "cmn", "jpn", "arb", "rus", "por", "ita", "nld",
                     "kor", "pol", "tur", "ces"], "high"),
    **dict.fromkeys(["swh", "uzn", "cym", "mlt", "lao", "npi", "snd", "asm", "ory", "guj", "kan",
                     "mal", "mar", "pan", "tel"], "low"),
}
PAPER_LANGUAGES = list(RESOURCE)

# ISO 639-1 codes (Whisper's ``<|xx|>`` tokens, M2M100's ``__xx__``); Cantonese has none.
ISO639_1 = dict(zip(
    "arb cat cym dan deu eng est fin fra ind ita kor nld pes por ron spa swh tgl tur uzn asm bel "
    "ben bos bul ces cmn guj heb hin hrv jpn kan lao lit lvs mal mar mkd mlt npi ory pan pol rus "
    "slk slv snd srp tam tel tha ukr urd vie".split(),
    "ar ca cy da de en et fi fr id it ko nl fa pt ro es sw tl tr uz as be bn bs bg cs zh gu he hi "
    "hr ja kn lo lt lv ml mr mk mt ne or pa pl ru sk sl sd sr ta te th uk ur vi".split(),
    strict=True))
SCHEMES = ("iso639_3", "iso639_1", "whisper", "nllb")

SONAR_NLLB = {code: nllb for code, (nllb, _fleurs) in LANGUAGES.items()}


@dataclass(frozen=True)
class Language:
    """One FLEURS language: its FLEURS configuration, English name, NLLB/FLoRes-200 code, family
    (Glottolog's top-level family), genus (WALS), script (ISO 15924, of FLEURS' transcripts) and
    whether SeamlessM4T takes it as speech and as text input."""
    code: str
    fleurs: str
    name: str
    nllb: str
    family: str
    genus: str
    script: str
    seamless_speech: bool
    seamless_text: bool


REGISTRY = {code: Language(code, *row) for code, row in _FLEURS_TABLE.items()}
FLEURS = {code: lang.fleurs for code, lang in REGISTRY.items()}
NLLB = {code: lang.nllb for code, lang in REGISTRY.items() if lang.nllb}
FAMILY_ALIASES = {"Niger-Congo": "Atlantic-Congo"}  # WALS's name for FLEURS' Atlantic-Congo ones
NAMED_GROUPS = {
    "all": "every FLEURS language the model takes (intersected with the data's languages)",
    "paper30": "the paper's 30 languages", "high_resource": "the paper's 15 high-resource",
    "low_resource": "the paper's 15 low-resource",
    "sonar_speech": "the 57 languages with a SONAR speech encoder",
    "family:NAME": "a family (e.g. family:Indo-European)", "genus:NAME": "a WALS genus",
    "script:CODE": "an ISO 15924 script (e.g. script:Cyrl)"}


def family(lang: str) -> str:
    """``lang``'s family (Glottolog top level), or ``""`` when the registry does not know it."""
    return REGISTRY[lang].family if lang in REGISTRY else ""


def genus(lang: str) -> str:
    """``lang``'s WALS genus, or ``""``."""
    return REGISTRY[lang].genus if lang in REGISTRY else ""


def script(lang: str) -> str:
    """``lang``'s ISO 15924 script, or ``""``."""
    return REGISTRY[lang].script if lang in REGISTRY else ""


def family_distance(a: str, b: str) -> int | None:
    """0: same genus, 1: same family and another genus, 2: different families; ``None`` when
    the registry does not know either language."""
    if a not in REGISTRY or b not in REGISTRY:
        return None
    la, lb = REGISTRY[a], REGISTRY[b]
    return 0 if la.genus == lb.genus and la.family == lb.family else \
        1 if la.family == lb.family else 2


DISTANCES = {0: "same genus", 1: "same family, other genus", 2: "different families"}


PLURAL = {"family": "families", "genus": "genera", "script": "scripts"}


def expand_languages(entries: list[str]) -> list[str]:
    """``data.languages`` entries as codes: codes as they are, and named groups
    (:data:`NAMED_GROUPS`) as their members in registry order, each language once."""
    out: list[str] = []
    for entry in entries:
        kind, _, value = entry.partition(":")
        if entry == "all":
            found = list(REGISTRY)
        elif entry == "paper30":
            found = PAPER_LANGUAGES
        elif entry in ("high_resource", "low_resource"):
            found = [c for c in PAPER_LANGUAGES if RESOURCE[c] == entry.split("_")[0]]
        elif entry == "sonar_speech":
            found = list(LANGUAGES)
        elif kind in ("family", "genus", "script") and value:
            value = FAMILY_ALIASES.get(value, value) if kind == "family" else value
            found = [c for c, lang in REGISTRY.items() if getattr(lang, kind) == value]
            if not found:
                known = sorted({getattr(lang, kind) for lang in REGISTRY.values()})
                hint = closest(value, known)
                raise LanguageError(f"no FLEURS language has {kind} {value!r}"
                                    + (f"; did you mean {kind}:{hint[0]}?" if hint else "")
                                    + f" ({PLURAL[kind]}: {', '.join(known)})")
        else:
            found = [entry]
        out += [c for c in found if c not in out]
    return out


def is_group(entry: str) -> bool:
    """Whether a ``data.languages`` entry names a group rather than one language."""
    return entry in NAMED_GROUPS or entry.partition(":")[0] in ("family", "genus", "script")


class LanguageError(ProbekitError):
    """A language a model does not support, or an unknown code."""


def nllb_code(lang: str) -> str:
    """``lang``'s NLLB code (``eng_Latn``); a code with ``_`` is taken as one already."""
    if "_" in lang:
        return lang
    if lang not in NLLB:
        raise LanguageError(f"no NLLB code known for {lang!r}; give it as e.g. 'yor_Latn'")
    return NLLB[lang]


def language_code(lang: str, scheme: str) -> str:
    """``lang`` (ISO 639-3) in a model's scheme: ``iso639_3`` (SeamlessM4T), ``iso639_1``
    (M2M100), ``whisper`` (ISO 639-1, ``yue`` for Cantonese), ``nllb`` (``eng_Latn``)."""
    if scheme == "iso639_3":
        return lang
    if scheme == "nllb":
        return nllb_code(lang)
    if scheme == "whisper" and lang == "yue":
        return "yue"
    if scheme in ("iso639_1", "whisper"):
        if lang not in ISO639_1:
            raise LanguageError(f"no ISO 639-1 code known for {lang!r}"
                                + (" (Cantonese has none)" if lang == "yue" else ""))
        return ISO639_1[lang]
    raise LanguageError(f"unknown language-code scheme {scheme!r}; use one of {', '.join(SCHEMES)}")


def fleurs_config(lang: str) -> str:
    """The FLEURS configuration of ``lang`` (an ISO 639-3 code, or a FLEURS name as is)."""
    if lang in FLEURS.values():
        return lang
    if lang not in FLEURS:
        hint = closest(lang, FLEURS)
        raise LanguageError(f"no FLEURS configuration known for {lang!r}"
                            + (f" (did you mean {', '.join(hint)}?)" if hint else "")
                            + "; give the FLEURS name itself, e.g. 'yo_ng'")
    return FLEURS[lang]


def resource_level(lang: str) -> str:
    """A language's resource level (``high``/``low``) from :data:`RESOURCE`; ``unknown`` for a
    language outside the paper list (give it in the recipe's ``analysis.resource``)."""
    return RESOURCE.get(lang, "unknown")


def describe(langs: list[str] | None = None) -> list[dict[str, str]]:
    """One row per language: its codes in every scheme, resource level, family, genus, script."""
    rows = []
    for code in langs or PAPER_LANGUAGES:
        lang = REGISTRY.get(code)
        rows.append({"code": code, "name": lang.name if lang else NAMES.get(code, ""),
                     "resource": resource_level(code), "family": family(code),
                     "genus": genus(code), "script": script(code),
                     "iso639_1": ISO639_1.get(code, ""),
                     "sonar_speech": f"sonar_speech_encoder_{code}" if code in LANGUAGES else "",
                     "nllb": NLLB.get(code, ""), "fleurs": FLEURS.get(code, "")})
    return rows


def unusable_codes(codes: list[str], present: set[str] | None, lacking: bool = True
                   ) -> str | None:
    """Why codes listed in ``data.languages`` cannot be used, in words (None: they can):
    ISO 639-1 codes with the ISO 639-3 code to use, codes nobody knows, and (``lacking``)
    known codes the data (``present``, when known) lacks, each told apart."""
    iso3 = {two: three for three, two in ISO639_1.items()}
    short = {c: iso3[c] for c in codes if c in iso3 and (present is None or c not in present)}
    if short:
        return ("probekit names languages by ISO 639-3 codes; "
                + ", ".join(f"{c!r} is ISO 639-1: use {three}" for c, three in short.items()))
    known = set(REGISTRY) | set(NAMES)
    unknown = [c for c in codes if c not in known and (present is None or c not in present)]
    if unknown:
        hint = closest(unknown[0], sorted(known | (present or set())))
        return (f"unknown language code {unknown[0]!r} (not an ISO 639-3 code probekit knows"
                + (f", nor one the data has; did you mean {', '.join(hint[:3])}?" if hint
                   else ", nor one the data has") + ")")
    if present is not None and lacking:
        absent = [c for c in codes if c not in present]
        if absent:
            return (f"the data has no sentence in {', '.join(absent)} (it has "
                    f"{', '.join(sorted(present))})")
    return None


def main() -> None:
    """``python -m probekit.languages [LANG | GROUP ...]``: the language table, by default of
    the paper recipes' 30; ``all``, ``family:Turkic``, ... name groups (:data:`NAMED_GROUPS`)."""
    import sys
    try:
        rows = describe(expand_languages(sys.argv[1:]) or None)
    except LanguageError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    cols = list(rows[0])
    width = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
    print("  ".join(c.ljust(width[c]) for c in cols))
    for r in rows:
        print("  ".join(r[c].ljust(width[c]) for c in cols))


if __name__ == "__main__":
    main()
