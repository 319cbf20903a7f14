package org.ldp.sdk;

/** Replays fixed bytes (the shared test vectors); throws when asked for more than it holds. */
public final class ReplaySource implements RandomSource {
  private final byte[] bytes;
  private int position;

  public ReplaySource(byte[] bytes) {
    this.bytes = bytes.clone();
  }

  public ReplaySource(String hex) {
    this(Hex.decode(hex));
  }

  @Override
  public void fill(byte[] out) {
    if (position + out.length > bytes.length) {
      throw new IllegalStateException("replay source exhausted: " + out.length + " bytes asked, " + remaining() + " left");
    }
    System.arraycopy(bytes, position, out, 0, out.length);
    position += out.length;
  }

  public int remaining() {
    return bytes.length - position;
  }
}
