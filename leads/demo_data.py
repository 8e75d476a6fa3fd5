"""The words and numbers behind `manage.py seed_demo`: names, companies, campaigns, phrases.

Kept apart from the command so the command reads as what it does, and this
file as what the demo looks like. Domains use the reserved `.example` TLD and
example.com/.org/.net (RFC 2606), so a demo database can never email a real
person, even with a real mail provider configured.
"""

# --- Staff -----------------------------------------------------------------------
# username, first name, last name (the role and staff flag are set by the command).
STAFF_NAMES = {
    "manager": ("Claire", "Dubois"),
    "marketer": ("Priya", "Nair"),
    "rep1": ("Tom", "Becker"),
    "rep2": ("Sofia", "Marino"),
}

# --- Marketing reference data ------------------------------------------------------
# name, slug (utm_source), default medium, weight among new leads
SOURCES = (
    ("Google Ads", "google", "cpc", 25),
    ("LinkedIn", "linkedin", "paid-social", 18),
    ("Newsletter", "newsletter", "email", 16),
    ("Organic search", "organic", "organic", 17),
    ("Webinars", "webinar", "event", 13),
    ("Referrals", "referral", "referral", 11),
)

# name, role, description, interests, demographics, typical job titles
PERSONAS = (
    (
        "Sales leader at a SMB",
        "Head of Sales",
        "Runs a team of 3-15 reps and owns the number; lives in the pipeline review.",
        "forecasting, rep coaching, pipeline hygiene",
        "companies of 11-200 people, Europe and North America",
        ("Head of Sales", "Sales Director", "VP Sales", "Sales Manager"),
    ),
    (
        "RevOps manager",
        "Revenue Operations Manager",
        "Keeps the CRM, the data and the reports honest for sales and marketing.",
        "data quality, attribution, integrations, reporting",
        "companies of 50-500 people with a dedicated ops function",
        ("RevOps Manager", "Sales Operations Lead", "Head of Revenue Operations", "CRM Administrator"),
    ),
    (
        "Founder",
        "Founder / CEO",
        "Still sells personally; wants a simple pipeline before hiring the first reps.",
        "founder-led sales, first sales hires, cash flow",
        "companies of 1-20 people, seed to series A",
        ("Founder", "Co-founder & CEO", "CEO", "Managing Director"),
    ),
    (
        "Marketing lead",
        "Head of Marketing",
        "Owns lead generation and needs to prove which campaigns bring customers.",
        "cost per lead, campaign ROI, nurturing emails",
        "companies of 20-300 people with a small marketing team",
        ("Head of Marketing", "Demand Generation Manager", "Marketing Manager", "Growth Lead"),
    ),
)
OTHER_TITLES = ("Operations Manager", "Account Executive", "Customer Success Manager", "CFO", "Office Manager")

# name, slug (utm_campaign), source slug, medium, persona, starts (days ago), ends (days ago or None: always on),
# monthly spend in EUR (low, high)
CAMPAIGNS = (
    ("Search: CRM for small sales teams", "search-crm-smb", "google", "cpc",
     "Sales leader at a SMB", 200, None, (2800, 4600)),
    ("Search: competitor keywords", "search-competitors", "google", "cpc",
     "RevOps manager", 120, 30, (1500, 2600)),
    ("LinkedIn: RevOps playbook e-book", "li-revops-playbook", "linkedin", "paid-social",
     "RevOps manager", 170, 60, (3200, 5200)),
    ("LinkedIn: founder-led sales", "li-founder-led-sales", "linkedin", "paid-social",
     "Founder", 90, None, (2000, 3400)),
    ("Newsletter: monthly pipeline tips", "nl-pipeline-tips", "newsletter", "email",
     "Sales leader at a SMB", 200, None, (180, 260)),
    ("Newsletter: spring product update", "nl-spring-update", "newsletter", "email",
     "Marketing lead", 75, 68, (120, 160)),
    ("Webinar: pipeline reviews that work", "webinar-pipeline-reviews", "webinar", "event",
     "Sales leader at a SMB", 140, 124, (900, 1400)),
    ("Webinar: forecasting without spreadsheets", "webinar-forecasting", "webinar", "event",
     "RevOps manager", 52, 36, (1100, 1600)),
)

UTM_CONTENT = {
    "cpc": ("ad-a", "ad-b", "sitelink-pricing", ""),
    "paid-social": ("carousel-1", "single-image", "lead-gen-form", "video-30s"),
    "email": ("header-link", "footer-cta", "tip-of-the-month"),
    "event": ("registration-page", "speaker-post"),
}
UTM_TERMS = (
    "crm for small business", "sales pipeline software", "lead tracking tool", "simple crm",
    "pipedrive alternative", "hubspot alternative", "sales forecasting tool",
)

# --- Companies -----------------------------------------------------------------------
COMPANY_STEMS = (
    "Northwind", "Bluepeak", "Lumen", "Copperfield", "Brightwater", "Oakline", "Fjord", "Halcyon",
    "Meridian", "Tidewell", "Granite", "Solvo", "Arbor", "Kestrel", "Quill", "Vantage", "Alder",
    "Beacon", "Cobalt", "Driftwood", "Ember", "Foxglove", "Harbor", "Ironbark", "Juniper", "Larkspur",
    "Mosaic", "Nimbus", "Orchard", "Pinecrest", "Redwood", "Saffron", "Thistle", "Upland", "Willow",
)
COMPANY_KINDS = (
    ("Logistics", "Logistics"), ("Software", "Software"), ("Analytics", "Software"),
    ("Consulting", "Professional services"), ("Health", "Healthcare"), ("Foods", "Food & beverage"),
    ("Energy", "Energy"), ("Studio", "Media"), ("Labs", "Software"), ("Manufacturing", "Manufacturing"),
    ("Travel", "Travel"), ("Finance", "Financial services"), ("Recruiting", "Staffing"),
)
COMPANY_SIZES = ("1-10", "11-50", "11-50", "51-200", "51-200", "201-500", "501-1000")
# country, time zones its leads live in, weight (a European product with some North American and APAC reach)
COUNTRIES = (
    ("France", ("Europe/Paris",), 20),
    ("Germany", ("Europe/Berlin",), 18),
    ("United Kingdom", ("Europe/London",), 16),
    ("Netherlands", ("Europe/Amsterdam",), 9),
    ("Spain", ("Europe/Madrid",), 8),
    ("United States", ("America/New_York", "America/Chicago", "America/Los_Angeles"), 16),
    ("Canada", ("America/Toronto",), 5),
    ("Singapore", ("Asia/Singapore",), 4),
    ("Australia", ("Australia/Sydney",), 4),
)
PERSONAL_EMAIL_DOMAINS = ("example.com", "example.org", "example.net")

# --- People ------------------------------------------------------------------------------
FIRST_NAMES = (
    "Emma", "Lucas", "Hannah", "Noah", "Chloé", "Jonas", "Olivia", "Mateo", "Sophie", "Liam",
    "Amélie", "Felix", "Isabel", "Daniel", "Mia", "Hugo", "Laura", "Samuel", "Julia", "Oliver",
    "Léa", "Max", "Charlotte", "Ethan", "Clara", "Arjun", "Nina", "David", "Sara", "Thomas",
    "Elena", "James", "Aisha", "Marco", "Lena", "Ryan", "Ines", "Kenji", "Marta", "Paul",
    "Grace", "Omar", "Anna", "Victor", "Zoe", "Leon", "Maya", "Jakob", "Alice", "Ben",
    "Freya", "Diego", "Ruth", "Tariq", "Helen", "Mei", "Oscar", "Lucy", "Karim", "Nora",
)
LAST_NAMES = (
    "Martin", "Schmidt", "Smith", "Garcia", "Jansen", "Rossi", "Dubois", "Müller", "Brown", "Fernández",
    "de Vries", "Lefebvre", "Wagner", "Taylor", "López", "Bakker", "Moreau", "Fischer", "Wilson", "Romano",
    "Visser", "Laurent", "Weber", "Evans", "Ruiz", "Meyer", "Thompson", "Costa", "Bernard", "Hoffmann",
    "Walker", "Navarro", "Peters", "Girard", "Schulz", "Clarke", "Moretti", "Lambert", "Koch", "Hughes",
    "Tan", "Patel", "Nguyen", "Kim", "O'Brien", "Andersen", "Novak", "Kowalski", "Lindqvist", "Sato",
)

# --- Consent -------------------------------------------------------------------------
CONSENT_TEXTS = (
    "I agree to receive emails about sales pipeline tips, product news and events. I can unsubscribe at any time.",
    "Yes, send me the guide and occasional emails about related resources. Unsubscribe in one click.",
    "I'd like to hear about webinars and product updates by email. See our privacy policy for details.",
)
# consent source by utm_source; "{campaign}" is the campaign's name, used only when there is one
CONSENT_SOURCES = {
    "google": ("Form on /demo", "Form on /pricing", "Form on /guides/pipeline-checklist"),
    "linkedin": ("LinkedIn Lead Gen Form: {campaign}", "LinkedIn Lead Gen Form"),
    "newsletter": ("Newsletter signup, site footer", "Newsletter signup, blog sidebar"),
    "organic": ("Form on /guides/pipeline-checklist", "Form on /blog/forecasting-101", "Form on /demo"),
    "webinar": ("Webinar registration: {campaign}", "Webinar recording download"),
    "referral": ("Referral introduction email, consent confirmed by reply",),
}
LEAD_CREATED_BY = {
    "google": ("Website form", "Downloaded the pipeline checklist"),
    "linkedin": ("LinkedIn Lead Gen sync", "Filled in the LinkedIn lead form"),
    "newsletter": ("Newsletter signup", "Joined the newsletter"),
    "organic": ("Website form", "Asked a question on the website"),
    "webinar": ("Webinar import", "Registered for the webinar"),
    "referral": ("", "Introduced by a customer"),
}

# --- Pipeline reasons -------------------------------------------------------------------
NURTURE_REASONS = (
    "Interested, but no project before next quarter: added to the nurturing track.",
    "Signed up for the newsletter; too early for a sales call.",
    "Downloaded a guide; no buying signal yet.",
    "Asked us to get back in touch after their hiring round.",
)
MQL_REASONS = (
    "Downloaded two guides and attended the webinar.",
    "Visited the pricing page three times this week.",
    "Fits the persona and replied to the nurturing email.",
    "Requested the case study after the webinar.",
)
SQL_REASONS = (
    "Discovery call: budget approved for Q{quarter}, {count} reps, decision by the Head of Sales.",
    "Need confirmed: pipeline lives in spreadsheets; wants a decision within {count} weeks.",
    "Has budget and authority; current tool contract ends in {count} months.",
    "Asked for a demo for the whole team ({count} people).",
)
RECYCLE_REASONS = (
    "Not ready: budget moved to next year. Back to nurturing.",
    "Champion on parental leave; revisit in a few months.",
    "Project paused after a reorganisation.",
)
LOST_REASONS = (
    "Went with a competitor: already on their marketing suite.",
    "Stopped replying after the second follow-up.",
    "No budget this year.",
    "Decided to stay on spreadsheets for now.",
    "Too early: team of two, no sales process yet.",
)
DISQUALIFY_REASONS = (
    "Student researching CRMs for a thesis, not a buyer.",
    "A competitor looking at our pricing.",
    "Spam signup: the email bounced.",
    "Outside our markets: needs a local-language product we don't offer.",
    "Job seeker, not a prospect.",
)
DEAL_LOST_REASONS = (
    "Chose a competitor that bundles email marketing.",
    "Budget frozen until the next fiscal year.",
    "Our champion left the company.",
    "Price: they wanted a 40% discount.",
    "Security review asked for on-premise hosting.",
)
REOPEN_REASONS = (
    "Came back after the competitor trial did not work out.",
    "New Head of Sales asked for a call.",
)

# product, lowest and highest deal value in EUR
PRODUCTS = (
    ("Starter plan, annual", 2400, 6000),
    ("Growth plan, annual", 7200, 18000),
    ("Scale plan, annual", 20000, 48000),
    ("Onboarding and data migration", 1500, 5000),
)
UPSELL_PRODUCTS = ("Extra seats", "Forecasting add-on", "Premium support")

# --- Activities ------------------------------------------------------------------------------
CALL_BODIES = {
    "connected": (
        "Talked for a while about how they track deals today ({tool}). Agreed to send the pipeline checklist.",
        "Good call. {count} reps, pipeline reviewed every Monday in a spreadsheet. Interested in the forecast view.",
        "Walked through pricing. They want to involve their {role} before the next step.",
        "Quick check-in after the guide download; they're comparing us with {tool}.",
        "Answered questions about the import from {tool}; sent the migration notes.",
    ),
    "voicemail": (
        "Left a voicemail about the guide they downloaded; will follow up by email.",
        "Voicemail: offered a 20-minute walkthrough next week.",
    ),
    "no_answer": ("No answer; try again in the morning their time.", "Rang out. Sent a short email instead."),
    "busy": ("Line busy; will retry after lunch.",),
    "wrong_number": ("Wrong number on the form; asked for the right one by email.",),
}
INBOUND_CALL_BODIES = (
    "They called back after the voicemail; booked a demo.",
    "Inbound: asked whether we integrate with their email provider (we do).",
)
TOOLS = ("spreadsheets", "Pipedrive", "HubSpot", "Salesforce", "a home-made Airtable base")
ROLES_TO_INVOLVE = ("CFO", "Head of Sales", "CEO", "IT lead")

NOTE_BODIES = (
    "Prefers email over calls; best reached before 10 am.",
    "Their fiscal year starts in {month}; budget talks happen a month before.",
    "Mentioned on LinkedIn that they are hiring two more reps.",
    "Read the forecasting case study (clicked twice in the last email).",
    "Uses {tool} today; unhappy with the reporting.",
    "Asked to be copied with their colleague from finance on the proposal.",
)
MEETING_BODIES = {
    "discovery": (
        "Discovery call: {count} reps, deals tracked in {tool}. Pain: no forecast they trust.",
        "Discovery call with the {role}: wants one pipeline view for sales and marketing.",
    ),
    "demo": (
        "Demo for the team ({count} people). Liked the stage history and the time-in-stage report.",
        "Demo focused on the import from {tool} and the rep task list. Proposal requested.",
    ),
    "closing": (
        "Contract review with the {role}; agreed on annual billing.",
        "Final call: walked through onboarding plan and start date.",
    ),
}
MONTHS = ("January", "April", "July", "October")

# category -> (the lead's words, our answer)
OBJECTIONS = {
    "price": (
        (
            "It's more than we pay for {tool} today.",
            "Walked through the time saved on weekly reviews; offered annual billing at two months free.",
        ),
        (
            "We can't justify that per seat for the whole team.",
            "Proposed starting with the reps only and adding managers later.",
        ),
    ),
    "timing": (
        (
            "Not before the end of the quarter, we're heads down closing.",
            "Agreed to a start date after quarter end; set up the trial now so data is ready.",
        ),
        (
            "We're in the middle of a reorg.",
            "Offered to revisit in six weeks and sent the onboarding timeline.",
        ),
    ),
    "authority": (
        (
            "I'd need our {role} to sign off.",
            "Sent a one-page business case and offered a short call with the {role}.",
        ),
        (
            "Procurement handles anything above 5k.",
            "Shared our security and procurement pack.",
        ),
    ),
    "need": (
        (
            "Honestly our spreadsheet works fine.",
            "Showed how the stage history answers the questions the spreadsheet can't.",
        ),
        (
            "We only have three deals a month.",
            "Pointed to the nurturing features for their many small leads.",
        ),
    ),
    "competitor": (
        (
            "{tool} offered us a bigger discount.",
            "Compared total cost including onboarding; ours is included.",
        ),
        (
            "We already have a {tool} licence through marketing.",
            "Showed the reporting their current setup can't do for sales.",
        ),
    ),
    "trust": (
        (
            "You're a small company; will you be around in two years?",
            "Shared customer references and the data export guarantee.",
        ),
        (
            "Where is our data hosted?",
            "EU hosting, DPA available; sent the security overview.",
        ),
    ),
    "other": (
        (
            "We need it in German for the field team.",
            "German UI is on the roadmap for next quarter; offered a beta.",
        ),
        (
            "Our IT only allows single sign-on.",
            "SSO is supported on the Growth plan; sent the setup guide.",
        ),
    ),
}

TASK_TITLES = {
    "first_call": ("Call {name} about their download", "First call: {name}", "Introduce ourselves to {name}"),
    "follow_up": (
        "Follow up with {name} on the guide",
        "Send {name} the pipeline checklist",
        "Check in with {name} after the webinar",
        "Call {name} back",
    ),
    "sql": ("Book a demo with {name}", "Send {name} the case study"),
    "deal": ("Send the proposal to {name}", "Prepare the contract for {name}", "Chase {name} for a decision"),
    "assign": ("Assign the new lead {name}",),
}
