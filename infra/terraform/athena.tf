# The lake in the Glue Data Catalog and the Athena workgroup that queries it.
# The tables are generated from lake/src/catalog.rs into glue_tables.tf (one
# aws_glue_catalog_table per lake table, partition projection, no crawler). No role is
# created here: ../README.md ("Query the lake from Athena") lists the permissions an
# Athena user needs.

resource "aws_glue_catalog_database" "lake" {
  name        = local.glue_database_name
  description = "irtlake (${var.name_prefix}): the lake's tables, Parquet under ${local.lake_uri}/, generated from lake/src/catalog.rs"
}

resource "aws_athena_workgroup" "lake" {
  name        = var.name_prefix
  description = "irtlake (${var.name_prefix}): queries of the lake; results encrypted with the lake's key under ${local.athena_results_location}"
  state       = "ENABLED"

  configuration {
    # Clients cannot override the results location or its encryption.
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true
    bytes_scanned_cutoff_per_query     = var.athena_bytes_scanned_cutoff_per_query

    engine_version {
      selected_engine_version = "Athena engine version 3"
    }

    result_configuration {
      output_location       = local.athena_results_location
      expected_bucket_owner = data.aws_caller_identity.current.account_id

      encryption_configuration {
        encryption_option = "SSE_KMS"
        kms_key_arn       = aws_kms_key.main.arn
      }
    }
  }
}
