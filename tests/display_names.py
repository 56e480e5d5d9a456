"""The raw names the acceptance audit found in the run page's lists, with the display name each must
read as (the title its detector task publishes, or the plug-in's own name). One list for the plug-in's
rule (tests/pipeline/test_detectors_names.py) and the page's lists (tests/dashboard/test_view_texts.py)."""

AUDIT_NAMES = [
    ("TPC", "TPCQA/h_tpc_event_recvertex_0", "Events with rec. vertex: x_vtx (cm)"),
    (
        "TPC",
        "TPCQA/h_tpc_track_all_recvertex_0_5_7",
        "number of clusters vs η vs pT (all tracks, rec. vertex)",
    ),
    ("TPC", "TPCQA/h_tpc_event_6", "Events by vertex status"),
    (
        "EMC",
        "EMCTRQA_histAmpEdgePosEMCGALOffline",
        "Integrated amplitude in patch edge position (EMCGAL Offline)",
    ),
    (
        "EMC",
        "EMCTRQA_histDCalMedianVsDCalMaxEMCREBKGOffline",
        "DCal background median vs DCal max background patch (Offline)",
    ),
    ("EMC", "EMCTRQA_histFastORL0_SM18", "FastOR L0 · SM 18"),
    ("HLT", "fHistHLTInSize_HLTOutSize", "HLT output size vs input size"),
]

# The FastOR maps' display names (their ROOT titles), as the run page, alarm messages, the alarms page
# and alarm notifications name them.
FASTOR_L0_LABEL = "FastOR L0 (hits with ADC > 0)"
FASTOR_L1_LABEL = "FastOR L1 (hits with ADC > 0)"
