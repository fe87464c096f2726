"""Analytics over the CRM: KPIs, topics, CSAT drivers, segments, rules, similar tickets, staffing, charts."""
