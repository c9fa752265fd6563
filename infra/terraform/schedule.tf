# Daily start at 03:00 UTC. The input carries the scheduled time as run_date (an
# RFC 3339 UTC time such as 2026-03-05T03:00:00Z); the state machine's NormalizeInput
# state keeps its date part, so every stage receives run_date = "2026-03-05".

resource "aws_scheduler_schedule" "daily" {
  #checkov:skip=CKV_AWS_297:The schedule's stored payload is a time template, bank names and a shard count (no data, no secret); the AWS owned key is enough and saves a key-policy grant to the scheduler service.
  name        = "${var.name_prefix}-daily"
  description = "irtlake pipeline, daily"
  group_name  = "default"

  schedule_expression          = var.schedule_expression
  schedule_expression_timezone = "UTC"
  state                        = var.schedule_enabled ? "ENABLED" : "DISABLED"

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_sfn_state_machine.pipeline.arn
    role_arn = aws_iam_role.scheduler.arn
    input    = jsonencode(local.schedule_input)

    retry_policy {
      maximum_event_age_in_seconds = 3600
      maximum_retry_attempts       = 3
    }
  }
}
