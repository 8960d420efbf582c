// One superlane's share of a MEM slice: ROWS words of one SECDED chunk each (DATA_BITS data bits,
// 16 lanes of a byte, protected by CHECK_BITS check bits: extended Hamming, as the model's
// func::Secded). A write encodes and stores; a read decodes, corrects a single-bit error (in data
// or check bits, flagged `corrected`, and written back as the model's read does), flags a
// double-bit error `uncorrectable` (data returned as stored); `flip` inverts one stored bit
// (fault injection: data bits 0 .. DATA_BITS-1, then the check bits). The read result is
// registered: it appears one cycle after `re`, with `rvalid`; `rcheck` gives the word's check bits
// as they are stored after the read (corrected, when a check bit was in error).
//
// The code: data bit k sits at the k-th Hamming position (counting from 1) that is not a power of
// two; check bit j < CHECK_BITS-1 is the XOR of the data bits whose position has bit j set; the
// last check bit makes the parity of all DATA_BITS + CHECK_BITS bits even. Data bit k of the chunk
// is bit k % 8 of lane k / 8.
module mem_bank #(
    parameter int ROWS = 512,
    parameter int DATA_BITS = 128,
    parameter int CHECK_BITS = 9,
    localparam int AW = $clog2(ROWS)
) (
    input  logic                  clk,
    input  logic                  rst_n,
    input  logic                  we,
    input  logic [AW-1:0]         waddr,
    input  logic [DATA_BITS-1:0]  wdata,
    input  logic                  re,
    input  logic [AW-1:0]         raddr,
    output logic                  rvalid,
    output logic [DATA_BITS-1:0]  rdata,
    output logic [CHECK_BITS-1:0] rcheck,
    output logic                  corrected,
    output logic                  uncorrectable,
    input  logic                  flip,
    input  logic [AW-1:0]         faddr,
    input  logic [15:0]           fbit
);
  localparam int R = CHECK_BITS - 1;  // Hamming bits; check bit R is the overall parity

  // Hamming position of every data bit.
  function automatic logic [DATA_BITS-1:0][15:0] positions();
    int p;
    p = 1;
    for (int k = 0; k < DATA_BITS; k++) begin
      p++;
      while ((p & (p - 1)) == 0) p++;
      positions[k] = 16'(p);
    end
  endfunction
  localparam logic [DATA_BITS-1:0][15:0] POS = positions();

  // The Hamming bits of a chunk's data.
  function automatic logic [R-1:0] hamming(input logic [DATA_BITS-1:0] x);
    hamming = '0;
    for (int k = 0; k < DATA_BITS; k++)
      if (x[k]) hamming = hamming ^ POS[k][R-1:0];
  endfunction

  function automatic logic [CHECK_BITS-1:0] encode(input logic [DATA_BITS-1:0] x);
    logic [R-1:0] h;
    h = hamming(x);
    encode = {^x ^ ^h, h};
  endfunction

  logic [DATA_BITS-1:0] data_q[ROWS];
  logic [CHECK_BITS-1:0] check_q[ROWS];

  // The decode of a stored word: the data and check bits as they should be, and the verdict.
  // Called at the clock edge only (inside the register's process), so a simulator does not
  // decode at every change of the address.
  typedef struct packed {
    logic [DATA_BITS-1:0] data;
    logic [CHECK_BITS-1:0] check;
    logic single, double_err;
  } decoded_t;

  function automatic decoded_t decode(input logic [DATA_BITS-1:0] d,
                                      input logic [CHECK_BITS-1:0] c);
    logic [R-1:0] syndrome;
    logic odd, no_position;
    decode.data = d;
    decode.check = c;
    syndrome = hamming(d) ^ c[R-1:0];
    odd = ^d ^ ^c;
    no_position = 1'b1;
    if (syndrome == '0) begin
      decode.check[R] = ~c[R];  // (odd parity: the overall parity bit itself)
      no_position = 1'b0;
    end
    for (int j = 0; j < R; j++)
      if (syndrome == R'(1 << j)) begin
        decode.check[j] = ~c[j];
        no_position = 1'b0;
      end
    for (int k = 0; k < DATA_BITS; k++)
      if ({{(16 - R) {1'b0}}, syndrome} == POS[k]) begin
        decode.data[k] = ~d[k];
        no_position = 1'b0;
      end
    decode.single = odd && !no_position;
    decode.double_err = (odd && no_position) || (!odd && syndrome != '0);
  endfunction

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      rvalid <= 1'b0;
      corrected <= 1'b0;
      uncorrectable <= 1'b0;
      rdata <= '0;
      rcheck <= '0;
    end else begin
      rvalid <= re;
      if (re) begin
        automatic decoded_t r = decode(data_q[raddr], check_q[raddr]);
        rdata <= r.single ? r.data : data_q[raddr];
        rcheck <= r.single ? r.check : check_q[raddr];
        corrected <= r.single;
        uncorrectable <= r.double_err;
        if (r.single) begin
          data_q[raddr] <= r.data;
          check_q[raddr] <= r.check;
        end
      end
      if (we) begin
        data_q[waddr] <= wdata;
        check_q[waddr] <= encode(wdata);
      end
      if (flip) begin
        if (32'(fbit) < DATA_BITS) data_q[faddr][fbit[$clog2(DATA_BITS)-1:0]] <=
            ~data_q[faddr][fbit[$clog2(DATA_BITS)-1:0]];
        else check_q[faddr][32'(fbit) - DATA_BITS] <=
            ~check_q[faddr][32'(fbit) - DATA_BITS];
      end
    end
  end
endmodule
