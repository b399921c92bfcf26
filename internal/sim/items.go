package sim

// The items below are the FIWARE smart-data-models keyValues form that the
// ingest accepts as-is (see shared/data/smart-data-models). Field order is
// fixed by the structs, so a seed and a clock give the same bytes every time.

// Geometry is a GeoJSON geometry (RFC 7946, lon/lat).
type Geometry struct {
	Type        string `json:"type"`
	Coordinates any    `json:"coordinates"`
}

// Address is the FIWARE address of an item.
type Address struct {
	AddressLocality string `json:"addressLocality"`
	AddressRegion   string `json:"addressRegion"`
	AddressCountry  string `json:"addressCountry"`
}

// AirQualityObserved is one observation of an air-quality station;
// pollutants in µg/m³, relativeHumidity as a fraction 0–1.
type AirQualityObserved struct {
	ID               string   `json:"id"`
	Type             string   `json:"type"`
	Name             string   `json:"name"`
	DateObserved     string   `json:"dateObserved"`
	Location         Geometry `json:"location"`
	Address          Address  `json:"address"`
	AreaServed       string   `json:"areaServed"`
	RefDevice        string   `json:"refDevice"`
	TypeOfLocation   string   `json:"typeOfLocation"`
	Source           string   `json:"source"`
	PM25             float64  `json:"pm25"`
	PM10             float64  `json:"pm10"`
	NO2              float64  `json:"no2"`
	O3               float64  `json:"o3"`
	CO               float64  `json:"co"`
	SO2              float64  `json:"so2"`
	Temperature      float64  `json:"temperature"`
	RelativeHumidity float64  `json:"relativeHumidity"`
}

// TrafficFlowObserved is one observation of a road segment over the five
// minutes ending at dateObserved; intensity counts vehicles over all lanes in
// that window, occupancy is a fraction 0–1, speeds in km/h, lengths in m,
// headway in s.
type TrafficFlowObserved struct {
	ID                   string   `json:"id"`
	Type                 string   `json:"type"`
	Name                 string   `json:"name"`
	DateObserved         string   `json:"dateObserved"`
	DateObservedFrom     string   `json:"dateObservedFrom"`
	DateObservedTo       string   `json:"dateObservedTo"`
	Location             Geometry `json:"location"`
	Address              Address  `json:"address"`
	RefRoadSegment       string   `json:"refRoadSegment"`
	LaneID               int      `json:"laneId"`
	LaneDirection        string   `json:"laneDirection"`
	Intensity            int      `json:"intensity"`
	Occupancy            float64  `json:"occupancy"`
	AverageVehicleSpeed  float64  `json:"averageVehicleSpeed"`
	AverageVehicleLength float64  `json:"averageVehicleLength"`
	AverageHeadwayTime   float64  `json:"averageHeadwayTime"`
	Congested            bool     `json:"congested"`
}

// Alert is a FIWARE Alert; description in Vietnamese.
type Alert struct {
	ID          string   `json:"id"`
	Type        string   `json:"type"`
	Name        string   `json:"name"`
	Category    string   `json:"category"`
	SubCategory string   `json:"subCategory"`
	Severity    string   `json:"severity"`
	Location    Geometry `json:"location"`
	Address     Address  `json:"address"`
	DateIssued  string   `json:"dateIssued"`
	ValidFrom   string   `json:"validFrom"`
	ValidTo     string   `json:"validTo"`
	Description string   `json:"description"`
	AlertSource string   `json:"alertSource"`
}

// Round is everything the simulator sends at one instant: one batch per kind.
type Round struct {
	Time    string                 `json:"time"`
	Air     []AirQualityObserved   `json:"air"`
	Traffic []TrafficFlowObserved  `json:"traffic"`
	Alerts  []Alert                `json:"alerts"`
	Water   []WaterQualityObserved `json:"water"`
	Weather []WeatherObserved      `json:"weather"`
}
