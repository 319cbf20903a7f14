package org.ldp.sdk;

/**
 * A report payload that is malformed, of another mechanism or out of range, with the
 * Python server's stable reason code (not_an_object, bad_version, wrong_mechanism, bad_type,
 * out_of_range, bad_encoding, bad_length, missing_field, unknown_field, not_a_list).
 */
public final class ReportDecodeException extends LdpException {
  private static final long serialVersionUID = 1L;
  public final String reason;
  public final String detail;
  /** index of the payload in its batch, or -1 */
  public final int index;

  public ReportDecodeException(String reason, String detail, int index) {
    super((index >= 0 ? "report " + index + ": " : "") + detail + " (" + reason + ")");
    this.reason = reason;
    this.detail = detail;
    this.index = index;
  }
}
