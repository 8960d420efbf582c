// The C2C link layer of one port: framing with CRC-32 and a 4-lane serialiser on the transmit
// side, a 4-lane deserialiser with the CRC check and deframing on the receive side. The frame is
// the model's (func::encode_frame): an 8-byte header (sequence, 32 bits; source chip, 16; source
// port, 8; flags, 8; little-endian), PAYLOAD_BYTES of payload (one vector), and the CRC-32
// (IEEE 802.3, reflected, initial and final value all ones; the model's boost::crc_32_type) of
// header and payload, little-endian. On the lanes, frame byte i travels on lane i % 4, least
// significant bit first: one bit per lane per clock, a 4-byte word every 8 clocks.
//
// Transmit: `tx_start` (one clock) takes the header fields and the payload; from the next clock
// `tx_active` is high for FRAME_BYTES * 2 clocks while `tx_lanes` carry the frame.
// Receive: bits on `rx_lanes` with `rx_valid`, from the frame's first bit; one clock after the
// last, `rx_done` pulses with the header fields, the payload and `rx_crc_ok`. (The transmit side
// sends flags 0, as the model does.)
module c2c_link #(
    parameter int PAYLOAD_BYTES = 32
) (
    input  logic                       clk,
    input  logic                       rst_n,
    input  logic                       tx_start,
    input  logic [31:0]                tx_seq,
    input  logic [15:0]                tx_chip,
    input  logic [7:0]                 tx_port,
    input  logic [PAYLOAD_BYTES*8-1:0] tx_payload,
    output logic                       tx_active,
    output logic [3:0]                 tx_lanes,
    input  logic                       rx_valid,
    input  logic [3:0]                 rx_lanes,
    output logic                       rx_done,
    output logic                       rx_crc_ok,
    output logic [31:0]                rx_seq,
    output logic [15:0]                rx_chip,
    output logic [7:0]                 rx_port,
    output logic [7:0]                 rx_flags,
    output logic [PAYLOAD_BYTES*8-1:0] rx_payload
);
  localparam int FRAME_BYTES = 8 + PAYLOAD_BYTES + 4;
  localparam int WORDS = FRAME_BYTES / 4;
  localparam int WW = $clog2(WORDS + 1);

  // CRC-32 (reflected, polynomial 0xEDB88320) of one more byte.
  function automatic logic [31:0] crc_byte(input logic [31:0] crc0, input logic [7:0] x);
    logic [31:0] crc;
    crc = crc0 ^ {24'd0, x};
    for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (crc[0] ? 32'hEDB88320 : 32'd0);
    return crc;
  endfunction
  function automatic logic [31:0] crc_word(input logic [31:0] crc, input logic [31:0] w);
    return crc_byte(crc_byte(crc_byte(crc_byte(crc, w[7:0]), w[15:8]), w[23:16]), w[31:24]);
  endfunction

  // --- transmit ---------------------------------------------------------------------------
  logic [63:0] tx_header;
  logic [PAYLOAD_BYTES*8-1:0] tx_body;
  logic [31:0] tx_crc;
  logic [WW-1:0] tx_word;
  logic [2:0] tx_bit;

  // Word w of the frame being sent (the CRC word from the running CRC).
  function automatic logic [31:0] tx_frame_word(input logic [WW-1:0] w);
    if (w < 2) return tx_header[32'(w)*32+:32];
    if (32'(w) < WORDS - 1) return tx_body[(32'(w)-2)*32+:32];
    return ~tx_crc;
  endfunction

  logic [31:0] tx_cur;
  always_comb tx_cur = tx_frame_word(tx_word);

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      tx_active <= 1'b0;
      tx_lanes <= '0;
      tx_word <= '0;
      tx_bit <= '0;
      tx_crc <= '1;
      tx_header <= '0;
      tx_body <= '0;
    end else if (tx_start) begin
      tx_header <= {8'd0, tx_port, tx_chip, tx_seq};
      tx_body <= tx_payload;
      tx_crc <= '1;
      tx_word <= '0;
      tx_bit <= '0;
      tx_active <= 1'b0;
    end else if (32'(tx_word) < WORDS) begin
      tx_active <= 1'b1;
      tx_lanes <= {tx_cur[24 + 32'(tx_bit)], tx_cur[16 + 32'(tx_bit)], tx_cur[8 + 32'(tx_bit)],
                   tx_cur[32'(tx_bit)]};
      tx_bit <= tx_bit + 3'd1;
      if (tx_bit == 3'd7) begin
        tx_word <= tx_word + 1'b1;
        if (32'(tx_word) < WORDS - 1) tx_crc <= crc_word(tx_crc, tx_cur);
      end
    end else begin
      tx_active <= 1'b0;
    end
  end

  // --- receive ----------------------------------------------------------------------------
  logic [31:0] rx_shift;  // the word being assembled: lane l's bits in byte l
  logic [WW-1:0] rx_word;
  logic [2:0] rx_bit;
  logic [31:0] rx_crc;
  logic [63:0] rx_header;
  logic [PAYLOAD_BYTES*8-1:0] rx_body;
  logic [31:0] rx_next;  // rx_shift with this clock's bits in place
  always_comb begin
    rx_next = rx_shift;
    for (int l = 0; l < 4; l++) rx_next[l*8 + 32'(rx_bit)] = rx_lanes[l];
  end

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      rx_shift <= '0;
      rx_word <= '0;
      rx_bit <= '0;
      rx_crc <= '1;
      rx_header <= '0;
      rx_body <= '0;
      rx_done <= 1'b0;
      rx_crc_ok <= 1'b0;
      rx_seq <= '0;
      rx_chip <= '0;
      rx_port <= '0;
      rx_flags <= '0;
      rx_payload <= '0;
    end else begin
      rx_done <= 1'b0;
      if (rx_valid) begin
        rx_shift <= rx_next;
        rx_bit <= rx_bit + 3'd1;
        if (rx_bit == 3'd7) begin
          if (32'(rx_word) == WORDS - 1) begin  // the CRC word: the frame is complete
            rx_done <= 1'b1;
            rx_crc_ok <= ~rx_crc == rx_next;
            rx_seq <= rx_header[31:0];
            rx_chip <= rx_header[47:32];
            rx_port <= rx_header[55:48];
            rx_flags <= rx_header[63:56];
            rx_payload <= rx_body;
            rx_word <= '0;
            rx_crc <= '1;
          end else begin
            if (rx_word < 2) rx_header[32'(rx_word)*32+:32] <= rx_next;
            else rx_body[(32'(rx_word)-2)*32+:32] <= rx_next;
            rx_crc <= crc_word(rx_crc, rx_next);
            rx_word <= rx_word + 1'b1;
          end
        end
      end
    end
  end
endmodule
