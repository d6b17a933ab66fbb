package ebpf

import (
	"encoding/binary"
	"errors"
)

// unmarshal decodes the event struct the program writes (native, little
// endian on the targets built).
func (e *blockreadEvent) unmarshal(b []byte) error {
	if len(b) < 24 {
		return errors.New("short event")
	}
	le := binary.LittleEndian
	e.Sector = le.Uint64(b[0:])
	e.TimeNs = le.Uint64(b[8:])
	e.Bytes = le.Uint32(b[16:])
	e.Write = le.Uint32(b[20:])
	return nil
}
