"""The FLEURS languages (all 102 configurations): codes, names, classification and SeamlessM4T
support. Data only; :mod:`probekit.languages` reads it.

Sources (each column was read from these; commits are the versions read):
- code (ISO 639-3 as SeamlessM4T spells it) and SeamlessM4T support: facebookresearch/
  seamless_communication @ 90e2b57, docs/m4t/README.md, "Supported Languages" (speech input =
  "Sp" in Source, text input = "Tx"; the table applies to the large v1 and v2 models).
- FLEURS configuration and English name: the google/fleurs loading script (_FLEURS_LANG);
  the same 102 configurations as lhotse's recipes/fleurs.py.
- NLLB code: facebookresearch/flores @ a6c830c, flores200/README.md (FLoRes-200).
- family: Glottolog 5.1's top-level family (glottolog/glottolog-cldf @ b6d3ea2). Glottolog does
  not accept WALS's Niger-Congo or Altaic: FLEURS' Niger-Congo languages are Atlantic-Congo,
  and Turkic and Mongolic-Khitan are families of their own.
- genus: WALS v2020.4 (cldf-datasets/wals @ 3a9efd6); names as that release gives them (e.g.
  Bantu, formerly Bantoid; Dravidian; Vietic; Western Nilotic; Peul-Serer; Wolof).
- script: ISO 15924, the script part of the FLoRes-200 code (FLEURS reads FLoRes sentences).

Choices: ff_sn is ``fuv`` (the code SeamlessM4T and FLoRes-200 use); ms_my is ``zsm`` (the
Seamless table lists Malay speech under zlm and text under zsm: both set); ar_eg is ``arb``
(FLEURS reads FLoRes' Modern Standard Arabic). Kabuverdianu (kea): Glottolog puts it in
Indo-European; WALS has no entry, and its genus here is "Creoles and Pidgins", as WALS gives
other creoles. Absent from the Seamless table (no speech, no text): hau lin mri nso umb wol;
speech only: ast kam kea ltz oci xho.
"""

# code: (fleurs config, name, nllb, family, genus, script, seamless_speech, seamless_text)
FLEURS_TABLE = {
    # code: (fleurs config, name, nllb, family, genus, script, seamless_speech, seamless_text)
    "afr": ("af_za", "Afrikaans", "afr_Latn", "Indo-European", "Germanic", "Latn", True, True),
    "amh": ("am_et", "Amharic", "amh_Ethi", "Afro-Asiatic", "Semitic", "Ethi", True, True),
    "arb": ("ar_eg", "Arabic", "arb_Arab", "Afro-Asiatic", "Semitic", "Arab", True, True),
    "asm": ("as_in", "Assamese", "asm_Beng", "Indo-European", "Indic", "Beng", True, True),
    "ast": ("ast_es", "Asturian", "ast_Latn", "Indo-European", "Romance", "Latn", True, False),
    "azj": ("az_az", "Azerbaijani", "azj_Latn", "Turkic", "Turkic", "Latn", True, True),
    "bel": ("be_by", "Belarusian", "bel_Cyrl", "Indo-European", "Slavic", "Cyrl", True, True),
    "ben": ("bn_in", "Bengali", "ben_Beng", "Indo-European", "Indic", "Beng", True, True),
    "bos": ("bs_ba", "Bosnian", "bos_Latn", "Indo-European", "Slavic", "Latn", True, True),
    "bul": ("bg_bg", "Bulgarian", "bul_Cyrl", "Indo-European", "Slavic", "Cyrl", True, True),
    "cat": ("ca_es", "Catalan", "cat_Latn", "Indo-European", "Romance", "Latn", True, True),
    "ceb": ("ceb_ph", "Cebuano", "ceb_Latn",
            "Austronesian", "Greater Central Philippine", "Latn", True, True),
    "ces": ("cs_cz", "Czech", "ces_Latn", "Indo-European", "Slavic", "Latn", True, True),
    "ckb": ("ckb_iq", "Sorani Kurdish", "ckb_Arab", "Indo-European", "Iranian", "Arab", True, True),
    "cmn": ("cmn_hans_cn", "Mandarin Chinese", "zho_Hans",
            "Sino-Tibetan", "Chinese", "Hans", True, True),
    "cym": ("cy_gb", "Welsh", "cym_Latn", "Indo-European", "Celtic", "Latn", True, True),
    "dan": ("da_dk", "Danish", "dan_Latn", "Indo-European", "Germanic", "Latn", True, True),
    "deu": ("de_de", "German", "deu_Latn", "Indo-European", "Germanic", "Latn", True, True),
    "ell": ("el_gr", "Greek", "ell_Grek", "Indo-European", "Greek", "Grek", True, True),
    "eng": ("en_us", "English", "eng_Latn", "Indo-European", "Germanic", "Latn", True, True),
    "est": ("et_ee", "Estonian", "est_Latn", "Uralic", "Finnic", "Latn", True, True),
    "fin": ("fi_fi", "Finnish", "fin_Latn", "Uralic", "Finnic", "Latn", True, True),
    "fra": ("fr_fr", "French", "fra_Latn", "Indo-European", "Romance", "Latn", True, True),
    "fuv": ("ff_sn", "Fula", "fuv_Latn", "Atlantic-Congo", "Peul-Serer", "Latn", True, True),
    "gaz": ("om_et", "Oromo", "gaz_Latn",
            "Afro-Asiatic", "Lowland East Cushitic", "Latn", True, True),
    "gle": ("ga_ie", "Irish", "gle_Latn", "Indo-European", "Celtic", "Latn", True, True),
    "glg": ("gl_es", "Galician", "glg_Latn", "Indo-European", "Romance", "Latn", True, True),
    "guj": ("gu_in", "Gujarati", "guj_Gujr", "Indo-European", "Indic", "Gujr", True, True),
    "hau": ("ha_ng", "Hausa", "hau_Latn", "Afro-Asiatic", "West Chadic", "Latn", False, False),
    "heb": ("he_il", "Hebrew", "heb_Hebr", "Afro-Asiatic", "Semitic", "Hebr", True, True),
    "hin": ("hi_in", "Hindi", "hin_Deva", "Indo-European", "Indic", "Deva", True, True),
    "hrv": ("hr_hr", "Croatian", "hrv_Latn", "Indo-European", "Slavic", "Latn", True, True),
    "hun": ("hu_hu", "Hungarian", "hun_Latn", "Uralic", "Ugric", "Latn", True, True),
    "hye": ("hy_am", "Armenian", "hye_Armn", "Indo-European", "Armenian", "Armn", True, True),
    "ibo": ("ig_ng", "Igbo", "ibo_Latn", "Atlantic-Congo", "Igboid", "Latn", True, True),
    "ind": ("id_id", "Indonesian", "ind_Latn",
            "Austronesian", "Malayo-Sumbawan", "Latn", True, True),
    "isl": ("is_is", "Icelandic", "isl_Latn", "Indo-European", "Germanic", "Latn", True, True),
    "ita": ("it_it", "Italian", "ita_Latn", "Indo-European", "Romance", "Latn", True, True),
    "jav": ("jv_id", "Javanese", "jav_Latn", "Austronesian", "Javanese", "Latn", True, True),
    "jpn": ("ja_jp", "Japanese", "jpn_Jpan", "Japonic", "Japanese", "Jpan", True, True),
    "kam": ("kam_ke", "Kamba", "kam_Latn", "Atlantic-Congo", "Bantu", "Latn", True, False),
    "kan": ("kn_in", "Kannada", "kan_Knda", "Dravidian", "Dravidian", "Knda", True, True),
    "kat": ("ka_ge", "Georgian", "kat_Geor", "Kartvelian", "Kartvelian", "Geor", True, True),
    "kaz": ("kk_kz", "Kazakh", "kaz_Cyrl", "Turkic", "Turkic", "Cyrl", True, True),
    "kea": ("kea_cv", "Kabuverdianu", "kea_Latn",
            "Indo-European", "Creoles and Pidgins", "Latn", True, False),
    "khk": ("mn_mn", "Mongolian", "khk_Cyrl", "Mongolic-Khitan", "Mongolic", "Cyrl", True, True),
    "khm": ("km_kh", "Khmer", "khm_Khmr", "Austroasiatic", "Khmer", "Khmr", True, True),
    "kir": ("ky_kg", "Kyrgyz", "kir_Cyrl", "Turkic", "Turkic", "Cyrl", True, True),
    "kor": ("ko_kr", "Korean", "kor_Hang", "Koreanic", "Korean", "Hang", True, True),
    "lao": ("lo_la", "Lao", "lao_Laoo", "Tai-Kadai", "Kam-Tai", "Laoo", True, True),
    "lin": ("ln_cd", "Lingala", "lin_Latn", "Atlantic-Congo", "Bantu", "Latn", False, False),
    "lit": ("lt_lt", "Lithuanian", "lit_Latn", "Indo-European", "Baltic", "Latn", True, True),
    "ltz": ("lb_lu", "Luxembourgish", "ltz_Latn", "Indo-European", "Germanic", "Latn", True, False),
    "lug": ("lg_ug", "Ganda", "lug_Latn", "Atlantic-Congo", "Bantu", "Latn", True, True),
    "luo": ("luo_ke", "Luo", "luo_Latn", "Nilotic", "Western Nilotic", "Latn", True, True),
    "lvs": ("lv_lv", "Latvian", "lvs_Latn", "Indo-European", "Baltic", "Latn", True, True),
    "mal": ("ml_in", "Malayalam", "mal_Mlym", "Dravidian", "Dravidian", "Mlym", True, True),
    "mar": ("mr_in", "Marathi", "mar_Deva", "Indo-European", "Indic", "Deva", True, True),
    "mkd": ("mk_mk", "Macedonian", "mkd_Cyrl", "Indo-European", "Slavic", "Cyrl", True, True),
    "mlt": ("mt_mt", "Maltese", "mlt_Latn", "Afro-Asiatic", "Semitic", "Latn", True, True),
    "mri": ("mi_nz", "Maori", "mri_Latn", "Austronesian", "Oceanic", "Latn", False, False),
    "mya": ("my_mm", "Burmese", "mya_Mymr", "Sino-Tibetan", "Burmese-Lolo", "Mymr", True, True),
    "nld": ("nl_nl", "Dutch", "nld_Latn", "Indo-European", "Germanic", "Latn", True, True),
    "nob": ("nb_no", "Norwegian", "nob_Latn", "Indo-European", "Germanic", "Latn", True, True),
    "npi": ("ne_np", "Nepali", "npi_Deva", "Indo-European", "Indic", "Deva", True, True),
    "nso": ("nso_za", "Northern Sotho", "nso_Latn",
            "Atlantic-Congo", "Bantu", "Latn", False, False),
    "nya": ("ny_mw", "Nyanja", "nya_Latn", "Atlantic-Congo", "Bantu", "Latn", True, True),
    "oci": ("oc_fr", "Occitan", "oci_Latn", "Indo-European", "Romance", "Latn", True, False),
    "ory": ("or_in", "Oriya", "ory_Orya", "Indo-European", "Indic", "Orya", True, True),
    "pan": ("pa_in", "Punjabi", "pan_Guru", "Indo-European", "Indic", "Guru", True, True),
    "pbt": ("ps_af", "Pashto", "pbt_Arab", "Indo-European", "Iranian", "Arab", True, True),
    "pes": ("fa_ir", "Persian", "pes_Arab", "Indo-European", "Iranian", "Arab", True, True),
    "pol": ("pl_pl", "Polish", "pol_Latn", "Indo-European", "Slavic", "Latn", True, True),
    "por": ("pt_br", "Portuguese", "por_Latn", "Indo-European", "Romance", "Latn", True, True),
    "ron": ("ro_ro", "Romanian", "ron_Latn", "Indo-European", "Romance", "Latn", True, True),
    "rus": ("ru_ru", "Russian", "rus_Cyrl", "Indo-European", "Slavic", "Cyrl", True, True),
    "slk": ("sk_sk", "Slovak", "slk_Latn", "Indo-European", "Slavic", "Latn", True, True),
    "slv": ("sl_si", "Slovenian", "slv_Latn", "Indo-European", "Slavic", "Latn", True, True),
    "sna": ("sn_zw", "Shona", "sna_Latn", "Atlantic-Congo", "Bantu", "Latn", True, True),
    "snd": ("sd_in", "Sindhi", "snd_Arab", "Indo-European", "Indic", "Arab", True, True),
    "som": ("so_so", "Somali", "som_Latn",
            "Afro-Asiatic", "Lowland East Cushitic", "Latn", True, True),
    "spa": ("es_419", "Spanish", "spa_Latn", "Indo-European", "Romance", "Latn", True, True),
    "srp": ("sr_rs", "Serbian", "srp_Cyrl", "Indo-European", "Slavic", "Cyrl", True, True),
    "swe": ("sv_se", "Swedish", "swe_Latn", "Indo-European", "Germanic", "Latn", True, True),
    "swh": ("sw_ke", "Swahili", "swh_Latn", "Atlantic-Congo", "Bantu", "Latn", True, True),
    "tam": ("ta_in", "Tamil", "tam_Taml", "Dravidian", "Dravidian", "Taml", True, True),
    "tel": ("te_in", "Telugu", "tel_Telu", "Dravidian", "Dravidian", "Telu", True, True),
    "tgk": ("tg_tj", "Tajik", "tgk_Cyrl", "Indo-European", "Iranian", "Cyrl", True, True),
    "tgl": ("fil_ph", "Filipino", "tgl_Latn",
            "Austronesian", "Greater Central Philippine", "Latn", True, True),
    "tha": ("th_th", "Thai", "tha_Thai", "Tai-Kadai", "Kam-Tai", "Thai", True, True),
    "tur": ("tr_tr", "Turkish", "tur_Latn", "Turkic", "Turkic", "Latn", True, True),
    "ukr": ("uk_ua", "Ukrainian", "ukr_Cyrl", "Indo-European", "Slavic", "Cyrl", True, True),
    "umb": ("umb_ao", "Umbundu", "umb_Latn", "Atlantic-Congo", "Bantu", "Latn", False, False),
    "urd": ("ur_pk", "Urdu", "urd_Arab", "Indo-European", "Indic", "Arab", True, True),
    "uzn": ("uz_uz", "Uzbek", "uzn_Latn", "Turkic", "Turkic", "Latn", True, True),
    "vie": ("vi_vn", "Vietnamese", "vie_Latn", "Austroasiatic", "Vietic", "Latn", True, True),
    "wol": ("wo_sn", "Wolof", "wol_Latn", "Atlantic-Congo", "Wolof", "Latn", False, False),
    "xho": ("xh_za", "Xhosa", "xho_Latn", "Atlantic-Congo", "Bantu", "Latn", True, False),
    "yor": ("yo_ng", "Yoruba", "yor_Latn", "Atlantic-Congo", "Defoid", "Latn", True, True),
    "yue": ("yue_hant_hk", "Cantonese Chinese", "yue_Hant",
            "Sino-Tibetan", "Chinese", "Hant", True, True),
    "zsm": ("ms_my", "Malay", "zsm_Latn", "Austronesian", "Malayo-Sumbawan", "Latn", True, True),
    "zul": ("zu_za", "Zulu", "zul_Latn", "Atlantic-Congo", "Bantu", "Latn", True, True),
}
