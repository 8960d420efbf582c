// The SXM's 16 x 16 transposer for one superlane: 16 byte planes of 16 lanes in (row i = plane i,
// byte j = lane j), 16 out with d[j][i] = a[i][j] (lane i of plane j becomes lane j of plane i);
// a superlane per clock, result registered: it appears one cycle later with `out_valid`. Bit-exact
// with func::transpose (models/func/sxm.h), which applies it to every superlane.
module sxm_transpose (
    input  logic           clk,
    input  logic           rst_n,
    input  logic           in_valid,
    input  logic [2047:0]  a,
    output logic           out_valid,
    output logic [2047:0]  d
);
  always_ff @(posedge clk) begin
    if (!rst_n) begin
      out_valid <= 1'b0;
      d <= '0;
    end else begin
      out_valid <= in_valid;
      if (in_valid)
        for (int i = 0; i < 16; i++)
          for (int j = 0; j < 16; j++) d[(j*16+i)*8+:8] <= a[(i*16+j)*8+:8];
    end
  end
endmodule
