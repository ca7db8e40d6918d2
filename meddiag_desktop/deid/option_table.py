"""The option columns of PS3.15 Table E.1-1: GENERATED, do not edit.

Written by tools/generate_deid_option_table.py from dicom-standard 0.1.0 (Innolitics' JSON parse
of the standard's tables, confidentiality_profile_attributes.json). Each mapping is
tag -> action code of that option's column (K keep, C clean), with the attribute's name.
"""

SOURCE = "dicom-standard 0.1.0, confidentiality_profile_attributes.json"

# Every single attribute that edition of Table E.1-1 lists (its option columns say
# nothing about attributes added to the table later).
LISTED: frozenset[int] = frozenset({
    0x00001000,
    0x00001001,
    0x00020003,
    0x00041511,
    0x00080014,
    0x00080015,
    0x00080018,
    0x00080020,
    0x00080021,
    0x00080022,
    0x00080023,
    0x00080024,
    0x00080025,
    0x0008002A,
    0x00080030,
    0x00080031,
    0x00080032,
    0x00080033,
    0x00080034,
    0x00080035,
    0x00080050,
    0x00080058,
    0x00080080,
    0x00080081,
    0x00080082,
    0x00080090,
    0x00080092,
    0x00080094,
    0x00080096,
    0x0008009C,
    0x0008009D,
    0x00080201,
    0x00081010,
    0x00081030,
    0x0008103E,
    0x00081040,
    0x00081041,
    0x00081048,
    0x00081049,
    0x00081050,
    0x00081052,
    0x00081060,
    0x00081062,
    0x00081070,
    0x00081072,
    0x00081080,
    0x00081084,
    0x00081110,
    0x00081111,
    0x00081120,
    0x00081140,
    0x00081155,
    0x00081195,
    0x00082111,
    0x00082112,
    0x00083010,
    0x00084000,
    0x00100010,
    0x00100020,
    0x00100021,
    0x00100030,
    0x00100032,
    0x00100040,
    0x00100050,
    0x00100101,
    0x00100102,
    0x00101000,
    0x00101001,
    0x00101002,
    0x00101005,
    0x00101010,
    0x00101020,
    0x00101030,
    0x00101040,
    0x00101050,
    0x00101060,
    0x00101080,
    0x00101081,
    0x00101090,
    0x00101100,
    0x00102000,
    0x00102110,
    0x00102150,
    0x00102152,
    0x00102154,
    0x00102155,
    0x00102160,
    0x00102180,
    0x001021A0,
    0x001021B0,
    0x001021C0,
    0x001021D0,
    0x001021F0,
    0x00102203,
    0x00102297,
    0x00102299,
    0x00104000,
    0x00120010,
    0x00120020,
    0x00120021,
    0x00120030,
    0x00120031,
    0x00120040,
    0x00120042,
    0x00120050,
    0x00120051,
    0x00120060,
    0x00120071,
    0x00120072,
    0x00120081,
    0x00120082,
    0x0016002B,
    0x0016004B,
    0x0016004D,
    0x0016004E,
    0x0016004F,
    0x00160050,
    0x00160051,
    0x00160070,
    0x00160071,
    0x00160072,
    0x00160073,
    0x00160074,
    0x00160075,
    0x00160076,
    0x00160077,
    0x00160078,
    0x00160079,
    0x0016007A,
    0x0016007B,
    0x0016007C,
    0x0016007D,
    0x0016007E,
    0x0016007F,
    0x00160080,
    0x00160081,
    0x00160082,
    0x00160083,
    0x00160084,
    0x00160085,
    0x00160086,
    0x00160087,
    0x00160088,
    0x00160089,
    0x0016008A,
    0x0016008B,
    0x0016008C,
    0x0016008D,
    0x0016008E,
    0x00180010,
    0x00181000,
    0x00181002,
    0x00181004,
    0x00181005,
    0x00181007,
    0x00181008,
    0x00181009,
    0x0018100A,
    0x0018100B,
    0x00181030,
    0x00181400,
    0x00182042,
    0x00184000,
    0x0018700A,
    0x00189185,
    0x00189367,
    0x00189369,
    0x0018936A,
    0x00189371,
    0x00189373,
    0x0018937B,
    0x0018937F,
    0x00189424,
    0x00189516,
    0x00189517,
    0x0018A003,
    0x0020000D,
    0x0020000E,
    0x00200010,
    0x00200052,
    0x00200200,
    0x00203401,
    0x00203406,
    0x00204000,
    0x00209158,
    0x00209161,
    0x00209164,
    0x00281199,
    0x00281214,
    0x00284000,
    0x00320012,
    0x00321020,
    0x00321021,
    0x00321030,
    0x00321032,
    0x00321033,
    0x00321060,
    0x00321066,
    0x00321067,
    0x00321070,
    0x00324000,
    0x00340001,
    0x00340002,
    0x00340005,
    0x00340007,
    0x00380004,
    0x00380010,
    0x00380011,
    0x00380014,
    0x0038001E,
    0x00380020,
    0x00380021,
    0x00380040,
    0x00380050,
    0x00380060,
    0x00380061,
    0x00380062,
    0x00380064,
    0x00380300,
    0x00380400,
    0x00380500,
    0x00384000,
    0x00400001,
    0x00400002,
    0x00400003,
    0x00400004,
    0x00400005,
    0x00400006,
    0x00400007,
    0x0040000B,
    0x00400010,
    0x00400011,
    0x00400012,
    0x00400241,
    0x00400242,
    0x00400243,
    0x00400244,
    0x00400245,
    0x00400250,
    0x00400251,
    0x00400253,
    0x00400254,
    0x00400275,
    0x00400280,
    0x0040050A,
    0x00400512,
    0x00400513,
    0x0040051A,
    0x00400551,
    0x00400554,
    0x00400555,
    0x00400562,
    0x00400600,
    0x00400602,
    0x00400610,
    0x004006FA,
    0x00401001,
    0x00401002,
    0x00401004,
    0x00401005,
    0x0040100A,
    0x00401010,
    0x00401011,
    0x00401101,
    0x00401102,
    0x00401103,
    0x00401104,
    0x00401400,
    0x00402001,
    0x00402008,
    0x00402009,
    0x00402010,
    0x00402011,
    0x00402016,
    0x00402017,
    0x00402400,
    0x00403001,
    0x00404005,
    0x00404008,
    0x00404010,
    0x00404011,
    0x00404023,
    0x00404025,
    0x00404027,
    0x00404028,
    0x00404030,
    0x00404034,
    0x00404035,
    0x00404036,
    0x00404037,
    0x00404050,
    0x00404051,
    0x00404052,
    0x0040A027,
    0x0040A073,
    0x0040A075,
    0x0040A078,
    0x0040A07A,
    0x0040A07C,
    0x0040A088,
    0x0040A123,
    0x0040A124,
    0x0040A171,
    0x0040A172,
    0x0040A192,
    0x0040A193,
    0x0040A307,
    0x0040A352,
    0x0040A353,
    0x0040A354,
    0x0040A358,
    0x0040A402,
    0x0040A730,
    0x0040DB0C,
    0x0040DB0D,
    0x0050001B,
    0x00500020,
    0x00500021,
    0x00620021,
    0x00700001,
    0x00700084,
    0x00700086,
    0x0070031A,
    0x00701101,
    0x00701102,
    0x00880140,
    0x00880200,
    0x00880904,
    0x00880906,
    0x00880910,
    0x00880912,
    0x04000100,
    0x04000402,
    0x04000403,
    0x04000404,
    0x04000550,
    0x04000561,
    0x04000600,
    0x20300020,
    0x22000002,
    0x22000005,
    0x30060024,
    0x300600C2,
    0x30080054,
    0x30080056,
    0x30080105,
    0x30080250,
    0x30080251,
    0x300A0002,
    0x300A0003,
    0x300A0004,
    0x300A0006,
    0x300A0007,
    0x300A000E,
    0x300A0013,
    0x300A0016,
    0x300A0072,
    0x300A0083,
    0x300A00B2,
    0x300A00C3,
    0x300A00DD,
    0x300A0196,
    0x300A01A6,
    0x300A01B2,
    0x300A0216,
    0x300A02EB,
    0x300A0608,
    0x300A0609,
    0x300A0611,
    0x300A0615,
    0x300A0619,
    0x300A0623,
    0x300A062A,
    0x300A0650,
    0x300A0676,
    0x300A067C,
    0x300A067D,
    0x300C0113,
    0x300E0008,
    0x30100006,
    0x3010000B,
    0x3010000F,
    0x30100013,
    0x30100015,
    0x30100017,
    0x3010001B,
    0x3010002D,
    0x30100031,
    0x30100033,
    0x30100034,
    0x30100035,
    0x30100036,
    0x30100037,
    0x30100038,
    0x3010003B,
    0x30100043,
    0x3010004C,
    0x3010004D,
    0x30100054,
    0x30100056,
    0x3010005A,
    0x3010005C,
    0x30100061,
    0x3010006E,
    0x3010006F,
    0x30100077,
    0x3010007A,
    0x3010007B,
    0x3010007F,
    0x30100081,
    0x40000010,
    0x40004000,
    0x40080042,
    0x40080102,
    0x4008010A,
    0x4008010B,
    0x4008010C,
    0x40080111,
    0x40080114,
    0x40080115,
    0x40080118,
    0x40080119,
    0x4008011A,
    0x40080202,
    0x40080300,
    0x40084000,
    0xFFFAFFFA,
    0xFFFCFFFC,
})

# Retain Longitudinal Temporal Information with Modified Dates Option
RETAIN_MODIFIED_DATES: dict[int, str] = {
    0x00080015: "C",  # Instance Coercion DateTime
    0x00080020: "C",  # Study Date
    0x00080021: "C",  # Series Date
    0x00080022: "C",  # Acquisition Date
    0x00080023: "C",  # Content Date
    0x00080024: "C",  # Overlay Date
    0x00080025: "C",  # Curve Date
    0x0008002A: "C",  # Acquisition DateTime
    0x00080030: "C",  # Study Time
    0x00080031: "C",  # Series Time
    0x00080032: "C",  # Acquisition Time
    0x00080033: "C",  # Content Time
    0x00080034: "C",  # Overlay Time
    0x00080035: "C",  # Curve Time
    0x00080201: "C",  # Timezone Offset From UTC
    0x001021D0: "C",  # Last Menstrual Date
    0x0016008D: "C",  # GPS Date Stamp
    0x00189369: "C",  # Source Start DateTime
    0x0018936A: "C",  # Source End DateTime
    0x00189516: "C",  # Start Acquisition DateTime
    0x00189517: "C",  # End Acquisition DateTime
    0x00340007: "C",  # Frame Origin Timestamp
    0x00380020: "C",  # Admitting Date
    0x00380021: "C",  # Admitting Time
    0x00400002: "C",  # Scheduled Procedure Step Start Date
    0x00400003: "C",  # Scheduled Procedure Step Start Time
    0x00400004: "C",  # Scheduled Procedure Step End Date
    0x00400005: "C",  # Scheduled Procedure Step End Time
    0x00400244: "C",  # Performed Procedure Step Start Date
    0x00400245: "C",  # Performed Procedure Step Start Time
    0x00400250: "C",  # Performed Procedure Step End Date
    0x00400251: "C",  # Performed Procedure Step End Time
    0x00404005: "C",  # Scheduled Procedure Step Start DateTime
    0x00404008: "C",  # Scheduled Procedure Step Expiration DateTime
    0x00404010: "C",  # Scheduled Procedure Step Modification DateTime
    0x00404011: "C",  # Expected Completion DateTime
    0x00404050: "C",  # Performed Procedure Step Start DateTime
    0x00404051: "C",  # Performed Procedure Step End DateTime
    0x00404052: "C",  # Procedure Step Cancellation DateTime
    0x0040A192: "C",  # Observation Date (Trial)
    0x0040A193: "C",  # Observation Time (Trial)
    0x30080054: "C",  # First Treatment Date
    0x30080056: "C",  # Most Recent Treatment Date
    0x30080250: "C",  # Treatment Date
    0x30080251: "C",  # Treatment Time
    0x300A0006: "C",  # RT Plan Date
    0x300A0007: "C",  # RT Plan Time
    0x3010004C: "C",  # Intended Phase Start Date
    0x3010004D: "C",  # Intended Phase End Date
}

# Retain Patient Characteristics Option
RETAIN_PATIENT_CHARACTERISTICS: dict[int, str] = {
    0x00100040: "K",  # Patient's Sex
    0x00101010: "K",  # Patient's Age
    0x00101020: "K",  # Patient's Size
    0x00101030: "K",  # Patient's Weight
    0x00102110: "C",  # Allergies
    0x00102160: "K",  # Ethnic Group
    0x001021A0: "K",  # Smoking Status
    0x001021C0: "K",  # Pregnancy Status
    0x00102203: "K",  # Patient's Sex Neutered
    0x00380050: "C",  # Special Needs
    0x00380500: "C",  # Patient State
    0x00400012: "C",  # Pre-Medication
}

# Clean Descriptors Option
CLEAN_DESCRIPTORS: dict[int, str] = {
    0x00081030: "C",  # Study Description
    0x0008103E: "C",  # Series Description
    0x00081080: "C",  # Admitting Diagnoses Description
    0x00081084: "C",  # Admitting Diagnoses Code Sequence
    0x00082111: "C",  # Derivation Description
    0x00084000: "C",  # Identifying Comments
    0x00102000: "C",  # Medical Alerts
    0x00102110: "C",  # Allergies
    0x00102180: "C",  # Occupation
    0x001021B0: "C",  # Additional Patient History
    0x00104000: "C",  # Patient Comments
    0x00120051: "C",  # Clinical Trial Time Point Description
    0x00120072: "C",  # Clinical Trial Series Description
    0x0016002B: "C",  # Maker Note
    0x0016004B: "C",  # Device Setting Description
    0x00180010: "C",  # Contrast/Bolus Agent
    0x00181030: "C",  # Protocol Name
    0x00181400: "C",  # Acquisition Device Processing Description
    0x00184000: "C",  # Acquisition Comments
    0x00189185: "C",  # Respiratory Motion Compensation Technique Description
    0x0018937B: "C",  # Multi-energy Acquisition Description
    0x0018937F: "C",  # Decomposition Description
    0x00189424: "C",  # Acquisition Protocol Description
    0x0018A003: "C",  # Contribution Description
    0x00204000: "C",  # Image Comments
    0x00209158: "C",  # Frame Comments
    0x00321030: "C",  # Reason for Study
    0x00321060: "C",  # Requested Procedure Description
    0x00321066: "C",  # Reason for Visit
    0x00321067: "C",  # Reason for Visit Code Sequence
    0x00321070: "C",  # Requested Contrast Agent
    0x00324000: "C",  # Study Comments
    0x00380040: "C",  # Discharge Diagnosis Description
    0x00380062: "C",  # Service Episode Description
    0x00380500: "C",  # Patient State
    0x00384000: "C",  # Visit Comments
    0x00400007: "C",  # Scheduled Procedure Step Description
    0x00400254: "C",  # Performed Procedure Step Description
    0x00400275: "C",  # Request Attributes Sequence
    0x00400280: "C",  # Comments on the Performed Procedure Step
    0x0040051A: "C",  # Container Description
    0x00400600: "C",  # Specimen Short Description
    0x00400602: "C",  # Specimen Detailed Description
    0x00401002: "C",  # Reason for the Requested Procedure
    0x0040100A: "C",  # Reason for Requested Procedure Code Sequence
    0x00401400: "C",  # Requested Procedure Comments
    0x00402001: "C",  # Reason for the Imaging Service Request
    0x00402400: "C",  # Imaging Service Request Comments
    0x00500021: "C",  # Long Device Description
    0x22000002: "C",  # Label Text
    0x300A0002: "C",  # RT Plan Label
    0x300A0003: "C",  # RT Plan Name
    0x300A0004: "C",  # RT Plan Description
    0x300A000E: "C",  # Prescription Description
    0x300A0016: "C",  # Dose Reference Description
    0x300A0072: "C",  # Fraction Group Description
    0x300A00C3: "C",  # Beam Description
    0x300A00DD: "C",  # Bolus Description
    0x300A0196: "C",  # Fixation Device Description
    0x300A01A6: "C",  # Shielding Device Description
    0x300A01B2: "C",  # Setup Technique Description
    0x300A02EB: "C",  # Compensator Description
    0x300A0608: "C",  # Treatment Position Group Label
    0x300A0619: "C",  # Radiation Dose Identification Label
    0x300A0623: "C",  # Radiation Dose In-Vivo Measurement Label
    0x300A062A: "C",  # RT Tolerance Set Label
    0x300A0676: "C",  # Equipment Frame of Reference Description
    0x300A067C: "C",  # Radiation Generation Mode Label
    0x300A067D: "C",  # Radiation Generation Mode Description
    0x300C0113: "C",  # Reason for Omission Description
    0x3010000F: "C",  # Conceptual Volume Combination Description
    0x30100017: "C",  # Conceptual Volume Description
    0x30100033: "C",  # User Content Label
    0x30100034: "C",  # User Content Long Label
    0x30100035: "C",  # Entity Label
    0x30100036: "C",  # Entity Name
    0x30100037: "C",  # Entity Description
    0x30100038: "C",  # Entity Long Label
    0x30100054: "C",  # RT Prescription Label
    0x30100056: "C",  # RT Treatment Approach Label
    0x3010005A: "C",  # RT Physician Intent Narrative
    0x3010005C: "C",  # Reason for Superseding
    0x30100061: "C",  # Prior Treatment Dose Description
    0x30100077: "C",  # Treatment Site
    0x3010007A: "C",  # Treatment Technique Notes
    0x3010007B: "C",  # Prescription Notes
    0x3010007F: "C",  # Fractionation Notes
    0x30100081: "C",  # Prescription Notes Sequence
    0x4008010B: "C",  # Interpretation Text
    0x40080115: "C",  # Interpretation Diagnosis Description
    0x40080300: "C",  # Impressions
    0x40084000: "C",  # Results Comments
}
