package sim

import "math"

// pm25ByHour is the mean PM2.5 concentration (µg/m³) by local hour of day
// (Asia/Ho_Chi_Minh, hour 0 = 00:00–00:59) of the US Embassy Hà Nội monitor,
// 2019-10-07 → 2020-01-01: the mean of column "Raw Conc." of
// shared/data/timeseries/Hanoi_PM2.5_2019_YTD.csv (kikyou21/hanoiair, MIT),
// rows with -999 (missing) left out. TestDiurnalTableMatchesCSV recomputes it
// from the copy in testdata/. The simulator uses its shape — night and morning
// highs, an afternoon low — scaled per station.
var pm25ByHour = [24]float64{
	73.09, 72.73, 77.82, 78.86, 77.82, 75.57, 79.71, 77.75, // 00–07
	73.19, 67.65, 65.51, 62.01, 58.04, 55.24, 49.38, 48.54, // 08–15
	49.05, 54.00, 61.72, 71.35, 76.45, 74.45, 74.54, 71.41, // 16–23
}

// pm25Diurnal is the mean PM2.5 at fractional local hour h (0 ≤ h < 24),
// interpolated linearly between the hourly means, wrapping at midnight.
func pm25Diurnal(h float64) float64 {
	h = math.Mod(h, 24)
	if h < 0 {
		h += 24
	}
	i := int(h)
	f := h - float64(i)
	return pm25ByHour[i]*(1-f) + pm25ByHour[(i+1)%24]*f
}

// hanoiMonthlyTemp is an approximate mean daily temperature (°C) of Hà Nội by
// month, January first (rounded climate normals: cool dry winter, hot humid
// summer). It only makes the simulated temperature plausible; it is not data.
var hanoiMonthlyTemp = [12]float64{16.4, 17.2, 20.0, 23.9, 27.4, 29.2, 29.4, 28.7, 27.6, 25.0, 21.7, 18.2}

// trafficDemand is the share of the peak traffic demand at fractional local
// hour h: night lows, rush hours 07:00–09:00 and 16:30–19:00 at 1.
func trafficDemand(h float64) float64 {
	h = math.Mod(h, 24)
	if h < 0 {
		h += 24
	}
	for i := 1; i < len(demandKnots); i++ {
		a, b := demandKnots[i-1], demandKnots[i]
		if h <= b[0] {
			f := (h - a[0]) / (b[0] - a[0])
			return a[1]*(1-f) + b[1]*f
		}
	}
	return demandKnots[len(demandKnots)-1][1]
}

// demandKnots are (hour, demand) points of a working day's traffic profile.
var demandKnots = [][2]float64{
	{0, 0.10}, {4, 0.06}, {5.5, 0.25}, {6.5, 0.60}, {7, 0.95}, {7.5, 1}, {8.5, 1}, {9, 0.90},
	{9.5, 0.62}, {12, 0.55}, {13, 0.50}, {16, 0.65}, {16.5, 0.92}, {17, 1}, {18.5, 1}, {19, 0.90},
	{19.5, 0.70}, {20, 0.55}, {22, 0.30}, {23, 0.16}, {24, 0.10},
}
