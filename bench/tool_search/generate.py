#!/usr/bin/env python3
"""Writes tools.json: 500 tool definitions shaped like the MCP servers people
put behind a gateway (25 services, their entities and the usual actions), for
the tool-search recall measurement (tasks.jsonl names the tools each task
should find). Deterministic: run it again and the file does not change.

    python3 bench/tool_search/generate.py
"""
import json, pathlib

# service: (display name, what it is, {entity: (plural, detail, id field, extra properties)})
SERVICES = {
    "github": ("GitHub", "code hosting", {
        "issue": ("issues", "a bug report or task in a repository", "issue_number", {"title": "Issue title", "body": "Markdown description", "labels": "Labels to apply"}),
        "pull_request": ("pull requests", "a proposed change merging one branch into another", "pull_number", {"title": "Title", "head": "Branch with the changes", "base": "Branch to merge into"}),
        "repository": ("repositories", "a git repository", "repo", {"name": "Repository name", "private": "Whether it is private"}),
        "branch": ("branches", "a line of commits in a repository", "branch", {"from_ref": "Commit or branch to start from"}),
        "release": ("releases", "a tagged, published version with notes", "release_id", {"tag_name": "Git tag", "notes": "Release notes"}),
        "workflow_run": ("workflow runs", "one execution of a GitHub Actions CI workflow", "run_id", {"status": "queued, in_progress, completed"}),
    }),
    "jira": ("Jira", "project tracking", {
        "issue": ("issues", "a ticket: a bug, story or task in a Jira project", "issue_key", {"summary": "One-line summary", "issue_type": "Bug, Story or Task", "priority": "Priority"}),
        "sprint": ("sprints", "a time-boxed iteration on a Scrum board", "sprint_id", {"goal": "Sprint goal", "start_date": "Start", "end_date": "End"}),
        "project": ("projects", "a collection of issues with its own workflow", "project_key", {"lead": "Project lead"}),
        "worklog": ("worklogs", "time logged against an issue", "worklog_id", {"time_spent": "e.g. 2h 30m", "issue_key": "Issue"}),
    }),
    "slack": ("Slack", "team chat", {
        "message": ("messages", "a chat message posted in a channel or thread", "ts", {"channel": "Channel ID or #name", "text": "Message text", "thread_ts": "Reply in this thread"}),
        "channel": ("channels", "a conversation room (public or private)", "channel_id", {"name": "Channel name", "topic": "Topic"}),
        "reminder": ("reminders", "a reminder Slackbot sends at a time", "reminder_id", {"text": "What to remind", "time": "When"}),
        "user": ("users", "a member of the workspace with a profile and status", "user_id", {"email": "Email address"}),
    }),
    "gmail": ("Gmail", "email", {
        "email": ("emails", "an email message in the mailbox", "message_id", {"to": "Recipients", "subject": "Subject", "body": "Body text"}),
        "draft": ("drafts", "an unsent email saved as a draft", "draft_id", {"to": "Recipients", "subject": "Subject", "body": "Body"}),
        "label": ("labels", "a tag that organizes emails into folders", "label_id", {"name": "Label name"}),
        "filter": ("filters", "a rule applied to incoming mail", "filter_id", {"criteria": "Matching criteria", "action": "What to do"}),
    }),
    "calendar": ("Google Calendar", "scheduling", {
        "event": ("events", "a meeting or appointment with a start, end and attendees", "event_id", {"summary": "Title", "start": "Start time", "end": "End time", "attendees": "Guest emails"}),
        "calendar": ("calendars", "a named calendar of events", "calendar_id", {"summary": "Calendar name", "time_zone": "Time zone"}),
        "availability": ("availabilities", "free and busy time slots of people", "calendar_id", {"time_min": "From", "time_max": "Until"}),
    }),
    "drive": ("Google Drive", "file storage", {
        "file": ("files", "a document, spreadsheet, PDF or other file", "file_id", {"name": "File name", "mime_type": "Type", "parent": "Folder"}),
        "folder": ("folders", "a directory that holds files", "folder_id", {"name": "Folder name"}),
        "permission": ("permissions", "who can view or edit a file (sharing)", "permission_id", {"email": "Who", "role": "reader, commenter or writer"}),
    }),
    "notion": ("Notion", "docs and wikis", {
        "page": ("pages", "a document page in the workspace", "page_id", {"title": "Title", "content": "Markdown content", "parent": "Parent page"}),
        "database": ("databases", "a table of pages with typed properties", "database_id", {"title": "Title", "properties": "Column definitions"}),
        "block": ("blocks", "a paragraph, heading, list item or other piece of a page", "block_id", {"type": "Block type", "text": "Text"}),
    }),
    "salesforce": ("Salesforce", "CRM", {
        "lead": ("leads", "a prospective customer not yet qualified", "lead_id", {"company": "Company", "email": "Email", "status": "Lead status"}),
        "opportunity": ("opportunities", "a potential deal with an amount, stage and close date", "opportunity_id", {"amount": "Deal value", "stage": "Sales stage", "close_date": "Expected close"}),
        "account": ("accounts", "a customer company", "account_id", {"name": "Company name", "industry": "Industry"}),
        "case": ("cases", "a customer support case", "case_id", {"subject": "Subject", "priority": "Priority"}),
    }),
    "stripe": ("Stripe", "payments", {
        "customer": ("customers", "a paying customer with payment methods", "customer_id", {"email": "Email", "name": "Name"}),
        "invoice": ("invoices", "a bill sent to a customer", "invoice_id", {"customer_id": "Customer", "amount_due": "Amount in cents"}),
        "subscription": ("subscriptions", "a recurring billing plan for a customer", "subscription_id", {"price_id": "Price", "customer_id": "Customer"}),
        "refund": ("refunds", "money returned to a customer for a charge", "refund_id", {"payment_intent": "Payment to refund", "amount": "Amount in cents", "reason": "Why"}),
        "payment": ("payments", "a charge of a customer's card (payment intent)", "payment_intent_id", {"amount": "Amount in cents", "currency": "Currency"}),
    }),
    "shopify": ("Shopify", "online store", {
        "order": ("orders", "a customer's purchase in the store, with line items and shipping", "order_id", {"status": "open, closed, cancelled", "customer_email": "Buyer"}),
        "product": ("products", "an item for sale with variants and prices", "product_id", {"title": "Title", "price": "Price", "vendor": "Vendor"}),
        "inventory": ("inventory levels", "stock quantity of a product variant at a location", "inventory_item_id", {"location_id": "Warehouse", "available": "Units in stock"}),
        "discount": ("discounts", "a discount code or automatic price reduction", "discount_id", {"code": "Code", "percentage": "Percent off"}),
    }),
    "zendesk": ("Zendesk", "customer support", {
        "ticket": ("tickets", "a customer support request with a conversation", "ticket_id", {"subject": "Subject", "requester": "Customer email", "priority": "Priority"}),
        "macro": ("macros", "a canned response and set of actions for tickets", "macro_id", {"title": "Title"}),
        "organization": ("organizations", "a customer company grouping users", "organization_id", {"name": "Name", "domain": "Email domain"}),
    }),
    "hubspot": ("HubSpot", "marketing CRM", {
        "contact": ("contacts", "a person in the CRM with email and lifecycle stage", "contact_id", {"email": "Email", "lifecycle_stage": "Stage"}),
        "deal": ("deals", "a sales deal in a pipeline", "deal_id", {"dealname": "Name", "amount": "Amount", "pipeline": "Pipeline"}),
        "campaign": ("campaigns", "a marketing email campaign", "campaign_id", {"name": "Name", "subject": "Email subject"}),
    }),
    "postgres": ("PostgreSQL", "database", {
        "table": ("tables", "a table in the database with columns and rows", "table", {"schema": "Schema name"}),
        "index": ("indexes", "a database index on table columns", "index_name", {"columns": "Columns", "table": "Table"}),
        "role": ("roles", "a database user or group with privileges", "role_name", {"login": "Can log in"}),
    }),
    "s3": ("Amazon S3", "object storage", {
        "bucket": ("buckets", "a storage container for objects in a region", "bucket", {"region": "AWS region"}),
        "object": ("objects", "a stored file (blob) under a key in a bucket", "key", {"bucket": "Bucket", "content_type": "MIME type"}),
    }),
    "kubernetes": ("Kubernetes", "container orchestration", {
        "pod": ("pods", "a running group of containers on a node", "pod", {"namespace": "Namespace"}),
        "deployment": ("deployments", "a set of identical pods rolled out and scaled together", "deployment", {"namespace": "Namespace", "replicas": "Replica count", "image": "Container image"}),
        "service": ("services", "a stable network address load-balancing pods", "service", {"namespace": "Namespace", "port": "Port"}),
        "namespace": ("namespaces", "an isolated group of cluster resources", "namespace", {"labels": "Labels"}),
    }),
    "datadog": ("Datadog", "monitoring", {
        "monitor": ("monitors", "an alert rule that notifies when a metric crosses a threshold", "monitor_id", {"query": "Metric query", "threshold": "Alert threshold"}),
        "dashboard": ("dashboards", "a page of graphs and widgets", "dashboard_id", {"title": "Title", "widgets": "Widgets"}),
        "incident": ("incidents", "a declared production incident being worked on", "incident_id", {"title": "Title", "severity": "SEV level"}),
    }),
    "pagerduty": ("PagerDuty", "on-call paging", {
        "incident": ("incidents", "an alert that pages the on-call engineer", "incident_id", {"title": "Title", "service_id": "Service", "urgency": "high or low"}),
        "schedule": ("schedules", "an on-call rotation: who is on call when", "schedule_id", {"time_zone": "Time zone"}),
        "escalation_policy": ("escalation policies", "who gets paged next when an alert is not acknowledged", "policy_id", {"rules": "Escalation rules"}),
    }),
    "twilio": ("Twilio", "phone and SMS", {
        "sms": ("SMS messages", "a text message sent to a phone number", "message_sid", {"to": "Phone number", "body": "Text"}),
        "call": ("calls", "an outbound or inbound phone call", "call_sid", {"to": "Phone number", "twiml": "What to say"}),
        "phone_number": ("phone numbers", "a phone number rented from Twilio", "number_sid", {"area_code": "Area code"}),
    }),
    "weather": ("Weather", "weather data", {
        "alert": ("alerts", "a severe weather warning (storm, flood, heat) for a region", "alert_id", {"region": "Region"}),
        "observation": ("observations", "the current conditions measured at a station right now", "station", {"units": "metric or imperial"}),
    }),
    "maps": ("Maps", "places and routes", {
        "route": ("routes", "driving, walking or transit directions between two places with travel time", "route_id", {"origin": "From", "destination": "To", "mode": "driving, walking, transit"}),
        "place": ("places", "a business or point of interest with address, hours and rating", "place_id", {"query": "What to look for", "near": "Around where"}),
        "geocode": ("geocodes", "the latitude and longitude of an address", "address", {"address": "Street address"}),
    }),
    "spotify": ("Spotify", "music", {
        "playlist": ("playlists", "a named list of songs", "playlist_id", {"name": "Name", "tracks": "Track URIs"}),
        "track": ("tracks", "a song with artist and album", "track_id", {"artist": "Artist"}),
        "playback": ("playbacks", "what is playing now on the user's device (play, pause, skip)", "device_id", {"uri": "What to play"}),
    }),
    "linear": ("Linear", "issue tracking for software teams", {
        "issue": ("issues", "a unit of work for an engineering team", "issue_id", {"title": "Title", "team": "Team", "estimate": "Points"}),
        "cycle": ("cycles", "a Linear cycle (an iteration of a team)", "cycle_id", {"team": "Team"}),
        "project": ("projects", "a set of issues toward a goal with a target date", "project_id", {"name": "Name", "target_date": "Target date"}),
    }),
    "confluence": ("Confluence", "team wiki", {
        "page": ("pages", "a wiki page in a space", "page_id", {"title": "Title", "body": "Page body", "space": "Space key"}),
        "space": ("spaces", "a wiki area for a team or project", "space_key", {"name": "Name"}),
    }),
    "airtable": ("Airtable", "spreadsheet database", {
        "record": ("records", "a row in an Airtable table", "record_id", {"fields": "Cell values", "table": "Table"}),
        "base": ("bases", "an Airtable base holding tables", "base_id", {"name": "Name"}),
    }),
    "figma": ("Figma", "design", {
        "file": ("files", "a design file with frames and components", "file_key", {"name": "Name"}),
        "comment": ("comments", "a comment pinned on a design", "comment_id", {"message": "Text", "file_key": "File"}),
        "export": ("exports", "a PNG, SVG or PDF rendering of a frame", "node_id", {"format": "png, svg or pdf", "scale": "Scale"}),
    }),
}

ACTIONS = [
    ("list", "List {plural} in {svc}, newest first, optionally filtered; {detail}."),
    ("get", "Get one {entity} from {svc} by its ID with all its fields ({detail})."),
    ("create", "Create a new {entity} in {svc}: {detail}."),
    ("update", "Update an existing {entity} in {svc} (change its fields); {detail}."),
    ("delete", "Delete a {entity} from {svc} permanently; {detail}."),
    ("search", "Search {plural} in {svc} by keywords and filters; {detail}."),
]

# Tools that are not list/get/create/update/delete/search of an entity.
SPECIAL = [
    ("github", "merge_pull_request", "Merge an open pull request into its base branch on GitHub.", {"pull_number": "PR number", "method": "merge, squash or rebase"}),
    ("github", "rerun_workflow", "Re-run a failed GitHub Actions workflow run (CI job).", {"run_id": "Run"}),
    ("jira", "transition_issue", "Move a Jira issue to another status in its workflow (e.g. In Progress, Done).", {"issue_key": "Issue", "status": "Target status"}),
    ("slack", "add_reaction", "Add an emoji reaction to a Slack message.", {"channel": "Channel", "ts": "Message", "emoji": "Emoji name"}),
    ("slack", "set_status", "Set your Slack status text and emoji, with an expiry.", {"text": "Status", "emoji": "Emoji", "expires": "When it clears"}),
    ("gmail", "send_email", "Send an email from Gmail to one or more recipients.", {"to": "Recipients", "subject": "Subject", "body": "Body"}),
    ("gmail", "reply_to_email", "Reply to an email thread in Gmail.", {"message_id": "Email", "body": "Reply"}),
    ("calendar", "find_meeting_time", "Find a time slot when all the given people are free for a meeting.", {"attendees": "People", "duration_minutes": "Length"}),
    ("drive", "share_file", "Share a Google Drive file with someone by email, as viewer or editor.", {"file_id": "File", "email": "Who", "role": "reader or writer"}),
    ("drive", "export_file", "Export a Google Doc or Sheet as PDF, DOCX or CSV.", {"file_id": "File", "format": "pdf, docx, csv"}),
    ("stripe", "refund_payment", "Refund all or part of a Stripe payment to the customer's card.", {"payment_intent": "Payment", "amount": "Cents"}),
    ("stripe", "cancel_subscription", "Cancel a customer's Stripe subscription now or at period end.", {"subscription_id": "Subscription", "at_period_end": "Wait for period end"}),
    ("shopify", "fulfill_order", "Mark a Shopify order as fulfilled and add the shipment tracking number.", {"order_id": "Order", "tracking_number": "Tracking"}),
    ("shopify", "cancel_order", "Cancel a Shopify order and optionally restock and refund it.", {"order_id": "Order", "restock": "Restock items"}),
    ("zendesk", "assign_ticket", "Assign a Zendesk ticket to an agent or group.", {"ticket_id": "Ticket", "assignee": "Agent"}),
    ("postgres", "run_query", "Run a read-only SQL query on the PostgreSQL database and return the rows.", {"sql": "SELECT statement"}),
    ("postgres", "explain_query", "Show the PostgreSQL query plan (EXPLAIN ANALYZE) of a SQL statement to see why it is slow.", {"sql": "Statement"}),
    ("s3", "presign_object", "Create a temporary pre-signed URL to download or upload an S3 object.", {"bucket": "Bucket", "key": "Key", "expires_in": "Seconds"}),
    ("kubernetes", "scale_deployment", "Scale a Kubernetes deployment to a number of replicas.", {"deployment": "Deployment", "replicas": "Count"}),
    ("kubernetes", "restart_deployment", "Restart all pods of a Kubernetes deployment (rollout restart).", {"deployment": "Deployment"}),
    ("kubernetes", "get_pod_logs", "Get the container logs of a Kubernetes pod.", {"pod": "Pod", "tail_lines": "Lines"}),
    ("datadog", "query_metrics", "Query a Datadog metric time series (e.g. CPU, latency) over a time range.", {"query": "Metric query", "from": "Start", "to": "End"}),
    ("datadog", "search_logs", "Search Datadog logs by query over a time range.", {"query": "Log query"}),
    ("datadog", "mute_monitor", "Mute a Datadog monitor so it stops alerting for a while.", {"monitor_id": "Monitor", "end": "Until"}),
    ("pagerduty", "acknowledge_incident", "Acknowledge a PagerDuty incident so escalation stops.", {"incident_id": "Incident"}),
    ("pagerduty", "resolve_incident", "Resolve a PagerDuty incident.", {"incident_id": "Incident"}),
    ("pagerduty", "list_oncalls", "List who is on call right now for each escalation policy and schedule in PagerDuty.", {"schedule_id": "Schedule"}),
    ("twilio", "send_sms", "Send an SMS text message to a phone number with Twilio.", {"to": "Phone number", "body": "Text"}),
    ("weather", "get_forecast", "Get the weather forecast (temperature, rain, wind) for a city for the next days.", {"location": "City or coordinates", "days": "Days"}),
    ("weather", "get_current", "Get the current weather conditions for a city right now.", {"location": "City"}),
    ("weather", "get_air_quality", "Get the air quality index and pollution levels for a city.", {"location": "City"}),
    ("maps", "get_directions", "Get directions and travel time from one place to another by car, foot or transit.", {"origin": "From", "destination": "To", "mode": "Mode"}),
    ("maps", "search_nearby", "Find restaurants, shops or other places near a location.", {"query": "What", "near": "Where", "radius_m": "Meters"}),
    ("maps", "get_timezone", "Get the time zone and local time of a location.", {"location": "Place"}),
    ("spotify", "play", "Start playing a song, album or playlist on Spotify.", {"uri": "What to play"}),
    ("spotify", "pause", "Pause Spotify playback.", {}),
    ("spotify", "skip_track", "Skip to the next track on Spotify.", {}),
    ("figma", "export_frame", "Export a Figma frame as an image (PNG, SVG or PDF).", {"file_key": "File", "node_id": "Frame", "format": "Format"}),
    ("confluence", "search_content", "Search Confluence pages and blog posts by text (CQL).", {"cql": "Query"}),
    ("airtable", "upsert_records", "Create or update rows in an Airtable table matched by a field.", {"table": "Table", "records": "Rows", "match_on": "Field"}),
]


def schema(id_field, extra, with_id):
    props = {}
    if with_id:
        props[id_field] = {"type": "string", "description": f"The {id_field.replace('_', ' ')}"}
    for name, description in extra.items():
        props[name] = {"type": "string", "description": description}
    return {"type": "object", "properties": props, "required": [id_field] if with_id else []}


def main():
    tools = []
    index = 0
    for svc, (display, kind, entities) in SERVICES.items():
        for entity, (plural, detail, id_field, extra) in entities.items():
            words = entity.replace("_", " ")
            # Three entities in eight have no search tool: 500 tools in all.
            skip_search = index % 8 < 3
            index += 1
            for action, template in ACTIONS:
                if action == "search" and skip_search:
                    continue
                text = template.format(entity=words, plural=plural, svc=display, detail=detail)
                fields = extra if action in ("create", "update", "search", "list") else {}
                tools.append({
                    "name": f"{svc}_{action}_{entity}",
                    "description": f"{text} ({display}: {kind})",
                    "inputSchema": schema(id_field, fields, action in ("get", "update", "delete")),
                })
    for svc, name, description, extra in SPECIAL:
        tools.append({
            "name": f"{svc}_{name}",
            "description": description,
            "inputSchema": schema("", extra, False),
        })
    names = [t["name"] for t in tools]
    assert len(names) == len(set(names)), "duplicate tool names"
    assert len(tools) == 500, len(tools)
    out = pathlib.Path(__file__).with_name("tools.json")
    out.write_text(json.dumps(tools, indent=0) + "\n")
    print(f"{len(tools)} tools in {out}")


main()
