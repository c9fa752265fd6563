variable "region" {
  description = "AWS region of every resource."
  type        = string
  default     = "eu-west-1"
}

variable "name_prefix" {
  description = "Prefix of every resource name (functions are <prefix>-<stage with dashes>, e.g. irtlake-score-topics)."
  type        = string
  default     = "irtlake"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name_prefix))
    error_message = "name_prefix: 2-21 characters, lower-case letters, digits and dashes, starting with a letter."
  }
}

variable "tags" {
  description = "Extra tags on every resource (Project and ManagedBy are always set)."
  type        = map(string)
  default     = {}
}

variable "lambda_zip" {
  description = "Path of the one Lambda artifact built by `make lambda` (cargo lambda build --release --arm64 --output-format zip), relative to the directory terraform runs in (infra/terraform). Uploaded once to the lake bucket under deploy/ and deployed as every stage's function."
  type        = string
  default     = "../../target/lambda/irtlake/bootstrap.zip"
}

variable "stage_config" {
  description = "Per stage: memory (MB; DataFusion's pool, IRTLAKE_QUERY_MEMORY_MB, is 60 % of it), timeout (s, at most 900), reserved concurrency (-1 = none reserved) and /tmp size (MB, 512..10240, where queries spill). Must have exactly the stages of local.stages. Lambda gives one vCPU per 1,769 MB. The per-student stages run once per shard (Distributed Map, MaxConcurrency 32 each): their memory is sized for a shard of 25,000 students and they reserve none, so they draw on the account's unreserved concurrency. See infra/README.md."
  type = map(object({
    memory_mb            = number
    timeout_s            = number
    reserved_concurrency = number
    ephemeral_mb         = optional(number, 512)
  }))
  default = {
    export_attempts = { memory_mb = 1024, timeout_s = 900, reserved_concurrency = 1, ephemeral_mb = 512 }
    calibrate       = { memory_mb = 3584, timeout_s = 900, reserved_concurrency = 4, ephemeral_mb = 2048 }
    plan            = { memory_mb = 1024, timeout_s = 300, reserved_concurrency = 1, ephemeral_mb = 1024 }
    score_abilities = { memory_mb = 2048, timeout_s = 900, reserved_concurrency = -1, ephemeral_mb = 2048 }
    score_topics    = { memory_mb = 2048, timeout_s = 900, reserved_concurrency = -1, ephemeral_mb = 2048 }
    features        = { memory_mb = 2048, timeout_s = 900, reserved_concurrency = -1, ephemeral_mb = 2048 }
    kpis            = { memory_mb = 2048, timeout_s = 900, reserved_concurrency = -1, ephemeral_mb = 2048 }
    churn           = { memory_mb = 3072, timeout_s = 900, reserved_concurrency = -1, ephemeral_mb = 2048 }
    growth          = { memory_mb = 3072, timeout_s = 900, reserved_concurrency = -1, ephemeral_mb = 2048 }
    forecast        = { memory_mb = 2048, timeout_s = 600, reserved_concurrency = 1, ephemeral_mb = 1024 }
    segments        = { memory_mb = 2048, timeout_s = 900, reserved_concurrency = -1, ephemeral_mb = 2048 }
    reports         = { memory_mb = 3072, timeout_s = 900, reserved_concurrency = -1, ephemeral_mb = 2048 }
  }

  validation {
    condition = alltrue([
      for s in values(var.stage_config) :
      s.memory_mb >= 128 && s.memory_mb <= 10240 && s.timeout_s >= 1 && s.timeout_s <= 900 && s.reserved_concurrency >= -1 && s.ephemeral_mb >= 512 && s.ephemeral_mb <= 10240
    ])
    error_message = "stage_config: memory_mb in 128..10240, timeout_s in 1..900, reserved_concurrency >= -1, ephemeral_mb in 512..10240."
  }
}

variable "lake_prefix" {
  description = "Key prefix of the lake root inside the bucket: LAKE_URI is s3://<bucket>/<lake_prefix>, tables live under <lake_prefix>/<table>/."
  type        = string
  default     = "lake"

  validation {
    condition     = can(regex("^[a-z0-9_-]+$", var.lake_prefix))
    error_message = "lake_prefix: one path segment of lower-case letters, digits, '_' or '-'."
  }
}

variable "glue_database_name" {
  description = "Name of the Glue Data Catalog database holding the lake's tables (the database Athena queries name). null (the default): name_prefix with '_' for '-', e.g. irtlake."
  type        = string
  default     = null

  validation {
    condition     = var.glue_database_name == null ? true : can(regex("^[a-z_][a-z0-9_]{0,254}$", var.glue_database_name))
    error_message = "glue_database_name: null, or up to 255 lower-case letters, digits and '_' (Athena needs no quotes for these), not starting with a digit."
  }
}

variable "athena_projection_start_date" {
  description = "First date (YYYY-MM-DD, a Monday) that Athena's partition projection covers in the date partitions (dt, run_date: every day; week_start: every Monday) up to today. Partitions before it are invisible to Athena; move it back if the lake holds older attempts."
  type        = string
  default     = "2020-01-06"

  validation {
    condition     = can(regex("^[0-9]{4}-[0-9]{2}-[0-9]{2}$", var.athena_projection_start_date)) && try(formatdate("EEE", "${var.athena_projection_start_date}T00:00:00Z") == "Mon", false)
    error_message = "athena_projection_start_date: a date YYYY-MM-DD that is a Monday (the week_start projection steps 7 days from it)."
  }
}

variable "athena_bytes_scanned_cutoff_per_query" {
  description = "Bytes one Athena query of the workgroup may scan before Athena cancels it (at least 10 MB). Default 10 GiB; partition filters keep ordinary queries far below."
  type        = number
  default     = 10737418240

  validation {
    condition     = var.athena_bytes_scanned_cutoff_per_query >= 10485760
    error_message = "athena_bytes_scanned_cutoff_per_query: at least 10485760 (10 MB, Athena's minimum)."
  }
}

variable "athena_results_retention_days" {
  description = "Days after which Athena query results (s3://<lake bucket>/athena-results/) expire."
  type        = number
  default     = 30
}

variable "report_url_expiry_seconds" {
  description = "Lifetime of the presigned report URLs written to report_artifacts (REPORT_URL_EXPIRY_SECS of the reports function). The default, 1 day, is the one default of irtlake: lake::DEFAULT_URL_EXPIRY in lake/src/artifacts.rs (a test keeps the two equal). SigV4 allows at most 7 days; a URL signed with the function's temporary credentials also stops working when those credentials expire."
  type        = number
  default     = 86400

  validation {
    condition     = var.report_url_expiry_seconds >= 60 && var.report_url_expiry_seconds <= 604800
    error_message = "report_url_expiry_seconds: 60..604800 (7 days, the SigV4 maximum)."
  }
}

variable "reports_retention_days" {
  description = "Days after which report objects (<lake_prefix>/reports/) expire."
  type        = number
  default     = 90
}

variable "noncurrent_version_retention_days" {
  description = "Days a replaced or deleted object version is kept (re-runs replace partitions; this is the undo window)."
  type        = number
  default     = 30
}

variable "access_log_retention_days" {
  description = "Days S3 server access logs of the lake bucket are kept in the log bucket."
  type        = number
  default     = 365
}

variable "log_retention_days" {
  description = "Retention of the CloudWatch log groups (functions and state machine), in days; one of the values CloudWatch accepts."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, ...)."
  }
}

variable "log_level" {
  description = "RUST_LOG of every function (tracing filter, JSON output)."
  type        = string
  default     = "info"
}

variable "state_machine_log_level" {
  description = "Step Functions execution logging level: ALL, ERROR or FATAL (execution data included)."
  type        = string
  default     = "ALL"

  validation {
    condition     = contains(["ALL", "ERROR", "FATAL"], var.state_machine_log_level)
    error_message = "state_machine_log_level: ALL, ERROR or FATAL."
  }
}

variable "schedule_expression" {
  description = "EventBridge Scheduler expression of the daily run, evaluated in UTC."
  type        = string
  default     = "cron(0 3 * * ? *)"
}

variable "schedule_enabled" {
  description = "Whether the daily schedule is enabled."
  type        = bool
  default     = true
}

variable "scheduled_banks" {
  description = "Banks the scheduled run calibrates (Map over banks): all, subject:<id> or topic:<id>."
  type        = list(string)
  default     = ["all"]

  validation {
    condition     = length(var.scheduled_banks) > 0 && alltrue([for b in var.scheduled_banks : can(regex("^(all|subject:.+|topic:.+)$", b))])
    error_message = "scheduled_banks: a non-empty list of all, subject:<id> or topic:<id>."
  }
}

variable "shard_count" {
  description = "Student shards of the scheduled run's per-student stages (the `shards` of the execution input, 1..1024). null (the default): the state machine's PlanShards stage chooses ceil(students with attempts in 60 days / students_per_shard)."
  type        = number
  default     = null

  validation {
    condition     = var.shard_count == null ? true : (var.shard_count >= 1 && var.shard_count <= 1024 && floor(var.shard_count) == var.shard_count)
    error_message = "shard_count: null or a whole number in 1..1024 (lake::shard::MAX_SHARDS)."
  }
}

variable "students_per_shard" {
  description = "Target students per shard when PlanShards chooses the count (100..10000000). null (the default): the plan stage's default, 25,000 (lake::plan::DEFAULT_STUDENTS_PER_SHARD)."
  type        = number
  default     = null

  validation {
    condition     = var.students_per_shard == null ? true : (var.students_per_shard >= 100 && var.students_per_shard <= 10000000)
    error_message = "students_per_shard: null or 100..10000000."
  }
}

variable "export_vpc_subnet_ids" {
  description = "Subnets for the export_attempts function when the PostgreSQL database is only reachable inside a VPC (empty: no VPC; the subnets then need a NAT or VPC endpoints for S3, KMS, Secrets Manager and CloudWatch Logs)."
  type        = list(string)
  default     = []
}

variable "export_vpc_security_group_ids" {
  description = "Security groups for the export_attempts function in the VPC (used only with export_vpc_subnet_ids)."
  type        = list(string)
  default     = []
}

variable "alarm_email" {
  description = "E-mail address subscribed to the alarm topic (null: no subscription; subscribe anything else to the topic output)."
  type        = string
  default     = null
}
