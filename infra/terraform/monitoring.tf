# Log groups (retention, KMS), the alarm topic and the alarms on executions.

resource "aws_cloudwatch_log_group" "stage" {
  for_each = toset(local.stages)

  name              = "/aws/lambda/${local.function_names[each.key]}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

# The /aws/vendedlogs/ prefix keeps the log-delivery resource policy short.
resource "aws_cloudwatch_log_group" "state_machine" {
  name              = "/aws/vendedlogs/states/${local.state_machine_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

resource "aws_sns_topic" "alarms" {
  name              = "${var.name_prefix}-alarms"
  kms_master_key_id = aws_kms_key.main.arn
}

resource "aws_sns_topic_subscription" "alarm_email" {
  count = var.alarm_email == null ? 0 : 1

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

# Any failed, timed-out or aborted execution (after the retries of its tasks).
resource "aws_cloudwatch_metric_alarm" "executions_failed" {
  alarm_name          = "${local.state_machine_name}-executions-failed"
  alarm_description   = "An irtlake pipeline execution failed, timed out or was aborted: see the execution's error (Retryable.*/Fatal.*) in Step Functions."
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  evaluation_periods  = 1
  treat_missing_data  = "notBreaching"

  metric_query {
    id          = "failed"
    expression  = "m1 + m2 + m3"
    label       = "Failed, timed-out or aborted executions"
    return_data = true
  }

  dynamic "metric_query" {
    for_each = { m1 = "ExecutionsFailed", m2 = "ExecutionsTimedOut", m3 = "ExecutionsAborted" }
    content {
      id = metric_query.key
      metric {
        namespace   = "AWS/States"
        metric_name = metric_query.value
        dimensions  = { StateMachineArn = aws_sfn_state_machine.pipeline.arn }
        period      = 300
        stat        = "Sum"
      }
    }
  }

  alarm_actions = [aws_sns_topic.alarms.arn]
  ok_actions    = [aws_sns_topic.alarms.arn]
}

# No successful execution for a day: the schedule did not fire or every run failed.
resource "aws_cloudwatch_metric_alarm" "no_success" {
  count = var.schedule_enabled ? 1 : 0

  alarm_name          = "${local.state_machine_name}-no-success-24h"
  alarm_description   = "No irtlake pipeline execution succeeded in the last 24 hours."
  namespace           = "AWS/States"
  metric_name         = "ExecutionsSucceeded"
  dimensions          = { StateMachineArn = aws_sfn_state_machine.pipeline.arn }
  statistic           = "Sum"
  period              = 86400
  evaluation_periods  = 1
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  treat_missing_data  = "breaching"

  alarm_actions = [aws_sns_topic.alarms.arn]
}
