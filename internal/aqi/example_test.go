package aqi_test

import (
	"fmt"
	"time"

	"github.com/iochub/iochub/internal/aqi"
)

func ExampleStation() {
	ict := time.FixedZone("ICT", 7*3600)
	t0 := time.Date(2019, 11, 12, 18, 0, 0, 0, ict)
	var s aqi.Station

	var v aqi.Values
	v[aqi.PM25] = aqi.Measured(55.7)
	_ = s.Add(t0.Add(10*time.Minute), v) // hour 18:00–19:00
	v[aqi.PM25] = aqi.Measured(60.1)
	v[aqi.NO2] = aqi.Measured(118.7)
	_ = s.Add(t0.Add(70*time.Minute), v) // hour 19:00–20:00

	r := s.Hourly(t0.Add(90 * time.Minute))
	fmt.Printf("%d %s %s %s\n", r.AQI, r.Dominant, r.Band.NameVI, r.Band.Color)
	fmt.Printf("PM2.5 NowCast %.1f µg/m³ → %.1f\n", r.Pollutants[aqi.PM25].Conc, r.Pollutants[aqi.PM25].Index)

	// Four hours later nothing new has arrived: the NowCast lacks 2 of its latest 3 hours.
	r = s.Hourly(t0.Add(4 * time.Hour))
	fmt.Println(r.Err)
	// Output:
	// 113 PM2.5 Kém #FF7E00
	// PM2.5 NowCast 58.0 µg/m³ → 113.3
	// AQI could not be computed: needs a PM2.5 or PM10 sub-index; PM2.5: NowCast needs at least 2 of the latest 3 hourly values (have 0); PM10: no hourly value in the latest 12 hours
}
