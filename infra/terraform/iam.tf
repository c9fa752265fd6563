# One role per function, allowed only its own lake prefixes (local.stage_tables), its
# own log group and the key; the state machine may invoke only these functions; the
# schedule may only start the state machine.

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  state_machine_name = "${var.name_prefix}-pipeline"
  state_machine_arn  = "arn:${local.partition}:states:${local.region}:${local.account_id}:stateMachine:${local.state_machine_name}"
  # Executions of the state machine: its own (<name>:<id>) and the child executions of
  # its Distributed Maps (<name>/<map run label>:<id>).
  state_machine_executions = [
    "arn:${local.partition}:states:${local.region}:${local.account_id}:execution:${local.state_machine_name}:*",
    "arn:${local.partition}:states:${local.region}:${local.account_id}:execution:${local.state_machine_name}/*",
  ]
}

# ---------------------------------------------------------------- functions

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "stage" {
  for_each = toset(local.stages)

  name               = "${local.function_names[each.key]}-fn"
  description        = "irtlake stage ${each.key}: its own lake prefixes only"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

data "aws_iam_policy_document" "stage" {
  for_each = toset(local.stages)

  # Objects of the tables the stage reads, and of its own outputs.
  statement {
    sid       = "ReadOwnTables"
    actions   = ["s3:GetObject"]
    resources = [for p in local.read_prefixes[each.key] : "${aws_s3_bucket.lake.arn}/${p}*"]
  }

  # One atomic PUT per partition (replacing a previous run's object); Delete for a
  # stage's own partitions only. None for a stage that writes nothing (plan).
  dynamic "statement" {
    for_each = length(local.write_prefixes[each.key]) > 0 ? [1] : []
    content {
      sid       = "WriteOwnTables"
      actions   = ["s3:PutObject", "s3:DeleteObject"]
      resources = [for p in local.write_prefixes[each.key] : "${aws_s3_bucket.lake.arn}/${p}*"]
    }
  }

  # Listing (DataFusion lists a table's folder before reading it) only under the same
  # prefixes.
  statement {
    sid       = "ListOwnTables"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.lake.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = flatten([for p in local.read_prefixes[each.key] : [trimsuffix(p, "/"), "${p}*"]])
    }
  }

  # SSE-KMS objects (GenerateDataKey to write, Decrypt to read) and the encrypted
  # environment.
  statement {
    sid       = "UseTheKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.main.arn]
  }

  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.stage[each.key].arn}:*"]
  }

  dynamic "statement" {
    for_each = each.key == "export_attempts" ? [1] : []
    content {
      sid       = "ReadDatabaseSecret"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = [aws_secretsmanager_secret.database_url.arn]
    }
  }
}

resource "aws_iam_role_policy" "stage" {
  for_each = toset(local.stages)

  name   = "lake-and-logs"
  role   = aws_iam_role.stage[each.key].id
  policy = data.aws_iam_policy_document.stage[each.key].json
}

# X-Ray segments (tracing_config Active): the AWS managed write-only policy, as the
# X-Ray actions take no resource.
resource "aws_iam_role_policy_attachment" "stage_xray" {
  for_each = toset(local.stages)

  role       = aws_iam_role.stage[each.key].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AWSXRayDaemonWriteAccess"
}

# Network interfaces for export_attempts, only when it runs in the database's VPC.
resource "aws_iam_role_policy_attachment" "export_vpc" {
  count = length(var.export_vpc_subnet_ids) > 0 ? 1 : 0

  role       = aws_iam_role.stage["export_attempts"].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
}

# ---------------------------------------------------------------- state machine

data "aws_iam_policy_document" "states_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["states.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = [local.state_machine_arn]
    }
  }
}

resource "aws_iam_role" "state_machine" {
  name               = "${local.state_machine_name}-sfn"
  description        = "irtlake state machine: invokes the stage functions, runs its Distributed Map children"
  assume_role_policy = data.aws_iam_policy_document.states_assume.json
}

data "aws_iam_policy_document" "state_machine" {
  statement {
    sid     = "InvokeTheStageFunctions"
    actions = ["lambda:InvokeFunction"]
    resources = flatten([
      for s in local.stages : [aws_lambda_function.stage[s].arn, "${aws_lambda_function.stage[s].arn}:*"]
    ])
  }

  # Distributed Map: the Map Run starts each child workflow execution of this same state
  # machine, and describes and stops them (AWS, "IAM policies for using Distributed Map
  # states"). No ItemReader or ResultWriter: no S3 access is needed.
  statement {
    sid       = "StartDistributedMapChildren"
    actions   = ["states:StartExecution"]
    resources = [local.state_machine_arn]
  }

  statement {
    sid       = "ManageDistributedMapChildren"
    actions   = ["states:DescribeExecution", "states:StopExecution"]
    resources = local.state_machine_executions
  }

  # Execution logs to CloudWatch Logs go through a log delivery, whose actions take no
  # resource: the set AWS documents for Step Functions logging.
  statement {
    sid = "DeliverExecutionLogs"
    actions = [
      "logs:CreateLogDelivery",
      "logs:GetLogDelivery",
      "logs:UpdateLogDelivery",
      "logs:DeleteLogDelivery",
      "logs:ListLogDeliveries",
      "logs:PutResourcePolicy",
      "logs:DescribeResourcePolicies",
      "logs:DescribeLogGroups",
    ]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "state_machine" {
  name   = "invoke-stages"
  role   = aws_iam_role.state_machine.id
  policy = data.aws_iam_policy_document.state_machine.json
}

# X-Ray segments of the executions (tracing enabled).
resource "aws_iam_role_policy_attachment" "state_machine_xray" {
  role       = aws_iam_role.state_machine.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AWSXRayDaemonWriteAccess"
}

# ---------------------------------------------------------------- schedule

data "aws_iam_policy_document" "scheduler_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "scheduler" {
  name               = "${var.name_prefix}-schedule"
  description        = "irtlake daily schedule: starts the state machine"
  assume_role_policy = data.aws_iam_policy_document.scheduler_assume.json
}

data "aws_iam_policy_document" "scheduler" {
  statement {
    sid       = "StartThePipeline"
    actions   = ["states:StartExecution"]
    resources = [aws_sfn_state_machine.pipeline.arn]
  }
}

resource "aws_iam_role_policy" "scheduler" {
  name   = "start-pipeline"
  role   = aws_iam_role.scheduler.id
  policy = data.aws_iam_policy_document.scheduler.json
}
