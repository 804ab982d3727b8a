"""The 好差评 closed loop as recorded steps: a case per bad rating (verify → rectify → answer →
close), deadlines in working days from a holiday calendar kept in the database, escalation of an
overdue case to the parent node's managers, the monthly loop report, and the rules for appeals
(which ratings, until when)."""
