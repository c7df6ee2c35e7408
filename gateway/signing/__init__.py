"""The signing service: CMS, RFC 3161 timestamps and record anchoring."""
