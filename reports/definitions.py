"""Each figure's definition as the page shows it on hover and in the legend (from ../shared domain definitions)."""

DEFINITIONS = {
    "visitors": "Human visitors: distinct visitor ids with at least one page view in the range not classed as a bot, "
                "an existing customer or the team.",
    "traffic_to_lead": "Traffic to lead: new leads / human visitors, same range and slice. The field commonly sees "
                       "5-10 % for email and newsletter signups.",
    "cohort": "Cohort funnel: of the leads created in the range, how many have reached each stage by now (a lead "
              "that skipped a stage passed it). Each rate is the step over the one before.",
    "period": "Period funnel: entries into each stage that happened in the range, whenever the lead was created "
              "(a lead re-entering a stage counts again). Ratios compare activity, not the same people.",
    "win_rate": "Win rate: deals won / (won + lost), of the deals closed in the range. Open deals are left out.",
    "deal_size": "Average deal size: the sum of the values of the deals won in the range / their number, per currency.",
    "time_to_close": "Time to close: from the deal's creation (the opportunity) to its win, over the deals won in the "
                     "range. Median and 90th percentile (nearest rank).",
    "sales_cycle": "Sales cycle length: from the lead's creation to the win, over the deals won in the range.",
    "time_in_stage": "Time in stage: from entering a stage to leaving it, over the stays that ended in the range "
                     "(from the stage history).",
    "pipeline": "Pipeline by stage: live leads in each open stage now, and the value of their open deals per "
                "currency. A picture of today, whatever the range.",
    "forecast": "Weighted forecast: over open deals, value x the win probability of the deal's lead's stage "
                "(CRM_STAGE_WIN_PROBABILITY), by the month the deal is expected to close.",
    "velocity": "Pipeline velocity: (open deals now x win rate x average deal size) / mean sales cycle length in "
                "days, per currency: the value the pipeline is expected to bring per day.",
    "cohorts": "Cohorts: leads by the month they were created; each cell is the share of that month's leads that had "
               "reached the stage (or gone past it) by the end of that month after (0 = the month created).",
    "stuck": "Stuck: open leads in their stage for longer than the 90th percentile of the stays in it that ended in "
             "the range.",
    "cold": "Cold: open leads nobody called, met or emailed for CRM_COLD_AFTER_DAYS days (never touched: since they "
            "were created), by owner.",
    "objections": "Objections logged in the range: resolution rate = resolved / raised; resolution time from raised "
                  "to resolved; win rate after = objections whose lead won a deal after it / those whose lead won or "
                  "lost one after it.",
    "reps": "Per rep, in the range: calls logged (connected), objections and meetings logged, leads converted to "
            "customer, deals owned and won with their value.",
    "nurturing": "Per sequence, the emails it sent in the range: emails a person opened, clicked or replied to (not "
                 "proxies or scanners), unsubscribes, bounces, the stage moves its steps made; revenue influenced: "
                 "deals won in the range by leads it had emailed before the win.",
    "economics": "Economics: spend in the range (each spend row pro rata to its days in the range); leads created "
                 "in the range from the campaign or source and how many reached MQL, SQL, customer by now; cost per "
                 "each = spend / count; revenue won = deals won in the range by its leads; return = revenue / spend "
                 "in the same currency.",
}
